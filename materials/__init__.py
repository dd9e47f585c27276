"""Material descriptions (PUMAS MDF XML): see README.md in this folder."""
