"""``buildkit ci``: recipes and symbol checks inside containers of the target distribution.

* :mod:`~buildkit.container.images`: the images buildkit knows and their Dockerfiles (pure, templates in
  ``containers/``);
* :mod:`~buildkit.container.matrix`: cells, artifact names, CI workflows (pure);
* :mod:`~buildkit.container.engine`: the Docker engine through the docker SDK, :class:`Container`;
* :mod:`~buildkit.container.python` and :mod:`~buildkit.container.symvers`: ``ci python`` and ``ci symvers``;
* ``buildkit/pybuild/relocate.py`` (stdlib only) is copied in and runs inside the container, with the
  interpreter just built (--portable uses it in place, and buildkit bundle on a copy).
"""
