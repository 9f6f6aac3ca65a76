"""Measuring renders the way the seed papers measure themselves, on the author's own panels.

- :mod:`.metrics`: the arithmetic — CLIP-T, CLIP-I, AP-CLIP-I, keypoint distance (AKD/MKR/failure);
- :mod:`.masking`: a character's figure cut out of a panel with the background whitened;
- :mod:`.pose_accuracy`: the requested pose (from staging) against the pose a detector finds;
- :mod:`.scoring`: one panel image → all its metrics (OpenCLIP features cached per picture);
- :mod:`.report`: the report (``report.json``, its JSON schema, and ``report.html``).

No Qt and no concrete backend: rendering the panels to compare is :mod:`comic_studio.workflows.evaluation`'s job.
"""
