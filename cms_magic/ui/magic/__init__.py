"""The ``%%cms_event`` and ``%cms`` magics."""
