"""The post-data split of the parallel load: per-table keys and indexes apart, the rest in order."""
from __future__ import annotations

from snapstore.restore.pg_parallel import split_post_data

POST = """SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);

--
-- Name: a a_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.a
    ADD CONSTRAINT a_pkey PRIMARY KEY (id);


--
-- Name: ix_a_x; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_a_x ON public.a USING gin (((x)::jsonb));


--
-- Name: ix_b; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX ix_b ON public.b USING btree (id);


--
-- Name: b b_a_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.b
    ADD CONSTRAINT b_a_fkey FOREIGN KEY (a_id) REFERENCES public.a(id);


--
-- Name: b bump; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER bump BEFORE UPDATE ON public.b FOR EACH ROW EXECUTE FUNCTION public.bump();
"""


def test_keys_and_indexes_split_by_table_foreign_keys_and_triggers_stay_in_order():
    header, per_table, rest = split_post_data(POST)
    assert header.startswith("SET statement_timeout") and "search_path" in header
    assert list(per_table) == ["public.a", "public.b"]
    assert "a_pkey PRIMARY KEY" in per_table["public.a"][0] and "ix_a_x" in per_table["public.a"][1]
    assert "ix_b" in per_table["public.b"][0]
    assert rest.index("b_a_fkey") < rest.index("CREATE TRIGGER bump")
    assert "PRIMARY KEY" not in rest and "CREATE INDEX" not in rest
    # nothing lost, nothing doubled
    assert len(header) + sum(map(len, (o for objs in per_table.values() for o in objs))) + len(rest) == len(POST)


def test_a_script_without_object_headers_runs_as_it_is():
    assert split_post_data("CREATE INDEX i ON t (x);\n") == ("", {}, "CREATE INDEX i ON t (x);\n")
