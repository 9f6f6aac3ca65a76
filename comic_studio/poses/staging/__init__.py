"""Staging a panel: which pose, who plays which figure, where the camera puts them, and the
pictures made from that — OpenPose skeletons and per-character head/body masks.

Every backend that draws the library's poses stages with these modules (storyboard, racig, plugins
built on them), and the UI draws the same staging (pose browser, mask preview, canvas overlay)
without importing a backend. No Qt, no torch (pose retrieval may load a text model lazily).

- :mod:`.figures`: the pose a request resolves to and the character → figure assignment;
- :mod:`.geometry` and :mod:`.framing`: figure measurements and the seeded camera per shot type;
- :mod:`.conditioning`: pose, OpenPose image and disjoint masks at a size (:class:`StagingOptions`
  are the backend settings staging reads);
- :mod:`.openpose`: the OpenPose-18 drawing; :mod:`.overlay`: the canvas overlay in panel units;
- :mod:`.request`: the request fields staging reads.
"""
