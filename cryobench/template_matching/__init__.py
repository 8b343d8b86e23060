"""Template matching in tomograms: angular grids, template preparation and the FFT search.

The pieces of the ``template_match`` baseline (``baselines/template_match.py``), kept free of
cryobench's data layer so they run with torch, numpy and scipy alone:

* :mod:`~cryobench.template_matching.angles`: SO(3) grids and their reduction by a symmetry;
* :mod:`~cryobench.template_matching.templates`: boxes, masks, filters, subtomogram averages,
  symmetry checks of a template;
* :mod:`~cryobench.template_matching.search`: the local-normalised cross-correlation over an
  angular grid on CPU or CUDA (torch FFTs).

Rotations follow :mod:`cryobench.coords`: ``R`` acts on ``(x, y, z)`` column vectors and maps
the template frame into the tomogram (a template point ``p`` sits at ``c + R p``).
"""
