"""Segmentation at scale on Apache Beam (install the ``beam`` extra).

One pipeline runs on the DirectRunner here and unchanged on Dataflow, Flink or Spark. The
pieces compose; each transform returns ``(results, dead_letters)``, one
:class:`DeadLetter` ``(uri, stage, error)`` per input that failed in it, so one bad file never
stops the others::

    import apache_beam as beam
    from camvidseg import SegmentConfig
    from camvidseg.beam import Evaluate, ReadImages, Segment, SegmenterModelHandler, WriteOutputs

    handler = SegmenterModelHandler(SegmentConfig(model="/models/camvid-hrnetv2-w48"))
    with beam.Pipeline() as pipeline:
        images, unreadable = pipeline | ReadImages("gs://bucket/frames/**/*.jpg")
        segmented, failed = images | Segment(handler)
        entries, unwritten = segmented | WriteOutputs(
            "gs://bucket/out", base="gs://bucket/frames/"
        )
        scores = (
            segmented
            | beam.Map(lambda s: (s.uri, s.segmentation.labels))
            | Evaluate("gs://bucket/annotations")
        )

:func:`run_beam` (``camvidseg beam``) runs the whole job: naming, resuming, the manifest and
``errors.jsonl``. Apache Beam is imported here and only here in camvidseg.
"""

from __future__ import annotations

from camvidseg.beam.logs import quiet_beam_noise


def _import_beam() -> None:
    try:
        with quiet_beam_noise():
            import apache_beam  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "camvidseg.beam needs Apache Beam: pip install 'camvidseg[beam]'"
        ) from exc


_import_beam()

from camvidseg.beam.evaluate import (  # noqa: E402
    ConfusionMatrixCombineFn,
    Evaluate,
    GroundTruthIndex,
)
from camvidseg.beam.files import glob_base, mirrored_name  # noqa: E402
from camvidseg.beam.handler import (  # noqa: E402
    METRICS_NAMESPACE,
    SegmenterModel,
    SegmenterModelHandler,
)
from camvidseg.beam.outputs import SkipFinished  # noqa: E402
from camvidseg.beam.records import DEAD_LETTER, STAGES, DeadLetter, Segmented  # noqa: E402
from camvidseg.beam.run import ERRORS_NAME, BeamJob, BeamReport, run_beam  # noqa: E402
from camvidseg.beam.transforms import (  # noqa: E402
    MatchedFile,
    MatchImages,
    MirrorNames,
    ReadImages,
    Segment,
    WriteOutputs,
)

__all__ = [
    "DEAD_LETTER",
    "ERRORS_NAME",
    "METRICS_NAMESPACE",
    "STAGES",
    "BeamJob",
    "BeamReport",
    "ConfusionMatrixCombineFn",
    "DeadLetter",
    "Evaluate",
    "GroundTruthIndex",
    "MatchImages",
    "MatchedFile",
    "MirrorNames",
    "ReadImages",
    "Segment",
    "Segmented",
    "SegmenterModel",
    "SegmenterModelHandler",
    "SkipFinished",
    "WriteOutputs",
    "glob_base",
    "mirrored_name",
    "run_beam",
]
