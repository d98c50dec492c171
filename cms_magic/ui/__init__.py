"""The skins: the magics, the panel, the command line, and their renderers."""
