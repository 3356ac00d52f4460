"""Mirix's database schemas on each engine, and how a column of one maps to the other."""
