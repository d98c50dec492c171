"""The widget panel."""
