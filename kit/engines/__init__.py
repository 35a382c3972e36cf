"""Where runs execute: the Engine seam (``base``), Docker (``docker``), virtual environments on
this host (``local``), the pure translation of a run into container arguments (``container``)
and the ``--host`` grammar (``endpoints``)."""
