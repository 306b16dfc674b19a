"""Explain why a CPython build or interpreter lacks ssl, hashlib or a usable sqlite3, and say what fixes it.

:func:`doctor` takes an interpreter (it runs the probe of :mod:`buildkit.pybuild.verify`), a CPython build
tree (``config.log``, ``Makefile``, ``pyconfig.h``, ``build/lib.*``) or a build log, and returns
:class:`Finding` records: what was found, what is wrong and the command that fixes it.

* :mod:`~buildkit.pybuild.doctor.parse`: the make summary (setup.py up to 3.11, check_extension_modules 3.12+)
  and configure's output or config.log, read into :class:`MakeSummary` and :class:`ConfigureFacts`;
* :mod:`~buildkit.pybuild.doctor.findings`: :class:`Finding`, one per root cause, and how fixes are phrased;
* :mod:`~buildkit.pybuild.doctor.rules`: what each sign means (configure, the summary, the errors met
  afterwards, the loader's reasons);
* :mod:`~buildkit.pybuild.doctor.targets`: :func:`doctor`, :func:`doctor_text`, :func:`doctor_build_tree`,
  :func:`doctor_interpreter`.
"""

from buildkit.pybuild.doctor.findings import Finding
from buildkit.pybuild.doctor.parse import ConfigureFacts, MakeSummary, parse_configure, parse_make_summary
from buildkit.pybuild.doctor.targets import doctor, doctor_build_tree, doctor_interpreter, doctor_text

__all__ = [
    "ConfigureFacts",
    "Finding",
    "MakeSummary",
    "doctor",
    "doctor_build_tree",
    "doctor_interpreter",
    "doctor_text",
    "parse_configure",
    "parse_make_summary",
]
