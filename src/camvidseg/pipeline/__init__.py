"""Segment files and folders into an output folder: what ``camvidseg segment`` runs.

Three stages overlap. Decode threads read images ahead of the model (and check which outputs of
an earlier run can be kept); two model threads take turns on the backend, one preparing or
handing on a batch while the other's batch is in the model; encode threads post-process the
scores (argmax, confidence) and write the outputs. Every queue between the stages is bounded and
finished manifest entries wait in a temporary file, so memory stays flat however many files
there are.

The output folder ``OUT`` gets one sub-folder per output kind, mirroring each input's path
relative to the folder it was found in (``in/a/b.jpg`` -> ``OUT/labels/a/b.png``), and a
``manifest.json`` that describes every input. Guarantees:

* Every file is written to a temporary file beside it and moved into place (:func:`os.replace`):
  a killed run never leaves a half-written file under a final name.
* Re-running resumes: inputs whose outputs exist, are valid images of the right size and are not
  older than the input are skipped (``overwrite=True`` redoes them).
* Nothing is ever written outside ``OUT`` (no ``..``; symlinked folders leading out are refused)
  and inputs are never written to: an ``OUT`` that would be read back as input is refused.
* Two inputs that map to one output name (``a.jpg`` and ``a.png``) are reported; the second is
  not processed.
* One bad file is an ``error`` entry in the manifest; the others are still processed.
* On Ctrl-C the batches in the model and the files being written are finished and the manifest
  is written before :class:`PipelineInterrupted` (a :class:`KeyboardInterrupt`) propagates.
* Only one run writes into an output folder at a time (an advisory lock, POSIX only).

The package's modules: :mod:`~camvidseg.pipeline.options` (what to write),
:mod:`~camvidseg.pipeline.inputs` (finding the inputs), :mod:`~camvidseg.pipeline.manifest`
(the record of a run), :mod:`~camvidseg.pipeline.outputs` (the output files),
:mod:`~camvidseg.pipeline.resume` (what an earlier run left), :mod:`~camvidseg.pipeline.stages`
(decode, model, encode) and :mod:`~camvidseg.pipeline.run` (the driver). Import public names
from ``camvidseg.pipeline``.
"""

from __future__ import annotations

from camvidseg.imageio import IMAGE_SUFFIXES
from camvidseg.pipeline.inputs import (
    InputFile,
    InputPlan,
    discover_inputs,
    output_name,
)
from camvidseg.pipeline.manifest import MANIFEST_FORMAT as MANIFEST_FORMAT
from camvidseg.pipeline.manifest import (
    MANIFEST_NAME,
    ManifestEntry,
    PipelineInterrupted,
    RunReport,
    RunSummary,
)
from camvidseg.pipeline.options import DEFAULT_OUTPUTS, OUTPUT_KINDS, RunOptions
from camvidseg.pipeline.run import LOCK_NAME as LOCK_NAME
from camvidseg.pipeline.run import run_pipeline, segment_paths
from camvidseg.pipeline.stages import MAX_INITIAL_MODEL_FAILURES as MAX_INITIAL_MODEL_FAILURES
from camvidseg.pipeline.stages import MODEL_THREADS as MODEL_THREADS

__all__ = [
    "DEFAULT_OUTPUTS",
    "IMAGE_SUFFIXES",
    "MANIFEST_NAME",
    "OUTPUT_KINDS",
    "InputFile",
    "InputPlan",
    "ManifestEntry",
    "PipelineInterrupted",
    "RunOptions",
    "RunReport",
    "RunSummary",
    "discover_inputs",
    "output_name",
    "run_pipeline",
    "segment_paths",
]
