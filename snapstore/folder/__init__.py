"""The portable backup folder: its layout, its checksums and its report."""
