"""Video: segment footage frame by frame, with temporal smoothing, into a new video.

Needs the ``video`` extra (PyAV, whose wheels bundle FFmpeg): ``pip install
'camvidseg[video]'``. PyAV is imported only when a video file is opened or written, so
importing this package (and segmenting folders of frames or arrays) works without it.

Example:
    >>> import numpy as np
    >>> from camvidseg import Segmenter
    >>> from camvidseg.testing import NearestColorBackend
    >>> frames = [np.full((4, 6, 3), [128, 64, 128], np.uint8)] * 3
    >>> [s.class_areas() for s in segment_video(Segmenter(NearestColorBackend()), frames)]
    [{'Road': 1.0}, {'Road': 1.0}, {'Road': 1.0}]
"""

from __future__ import annotations

from camvidseg.video.areas import AreaTimeline, area_fractions, draw_area_chart
from camvidseg.video.frames import (
    DEFAULT_RATE,
    Frame,
    FrameRange,
    FrameSource,
    VideoInfo,
    frame_files,
    open_frames,
    parse_rate,
    rate_text,
)
from camvidseg.video.run import (
    VIEWS,
    VideoInterrupted,
    VideoOptions,
    VideoReport,
    manifest_path,
    render_view,
    run_video,
)
from camvidseg.video.segment import SegmentedFrame, VideoStats, segment_frames, segment_video
from camvidseg.video.temporal import (
    EmaSmoother,
    FlickerMeter,
    SceneCutDetector,
    TemporalSmoothing,
    frame_difference,
    label_change_fraction,
)
from camvidseg.video.writer import DEFAULT_CRF, OUTPUT_FORMATS, VideoWriter

__all__ = [
    "DEFAULT_CRF",
    "DEFAULT_RATE",
    "OUTPUT_FORMATS",
    "VIEWS",
    "AreaTimeline",
    "EmaSmoother",
    "FlickerMeter",
    "Frame",
    "FrameRange",
    "FrameSource",
    "SceneCutDetector",
    "SegmentedFrame",
    "TemporalSmoothing",
    "VideoInfo",
    "VideoInterrupted",
    "VideoOptions",
    "VideoReport",
    "VideoStats",
    "VideoWriter",
    "area_fractions",
    "draw_area_chart",
    "frame_difference",
    "frame_files",
    "label_change_fraction",
    "manifest_path",
    "open_frames",
    "parse_rate",
    "rate_text",
    "render_view",
    "run_video",
    "segment_frames",
    "segment_video",
]
