"""``camvidseg video``: segment a video (or a folder of frames) into a new video.

A thin layer over :func:`camvidseg.video.run_video`: options, progress bar, messages, exit
codes. PyAV is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from camvidseg.cli import _config
from camvidseg.cli._common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    add_verbosity,
    non_negative_int,
    positive_int,
    progress_bar,
    report_error,
    unit_float,
)
from camvidseg.cli._config import add_segmenter_options, config_from_args, model_handle

if TYPE_CHECKING:
    from camvidseg.config import SegmentConfig
    from camvidseg.segmenter import Segmenter
    from camvidseg.video import VideoReport

# Duplicated from camvidseg.video so that `--help` imports nothing heavy.
_VIEWS = ("overlay", "color", "panel")
_SUFFIXES = (".mp4", ".mkv")

_DESCRIPTION = """\
Segment a video file (anything FFmpeg reads; rotation metadata is applied) or a folder of
frames (image files in natural order) and write a video of the result:

  OUTPUT.mp4    H.264, yuv420p: plays in browsers (an odd width or height is padded by one
                pixel, repeating the last row or column)
  OUTPUT.mkv    FFV1, lossless RGB, exact size
  OUTPUT.json   manifest: input, frames, fps (exact, e.g. 30000/1001), size, smoothing,
                flicker, timing, status
  --labels-dir  frame_000000.png per frame (indexed PNG, pixel = class id of the labels shown
                in the video, never through a lossy codec), areas.csv, areas.png

The output keeps the input's exact frame rate, timestamps and frame count (--every N keeps
every N-th frame at 1/N of the rate). It is written under a temporary name and renamed when
closed. Ctrl-C (exit 130) or a truncated or damaged input (exit 1) still close a playable file
holding the frames decoded so far. An input that cannot be opened exits 1 writing nothing.

Flicker is the mean fraction of pixels whose label changes between consecutive frames;
--temporal ema averages the class probabilities over time (restarted at scene cuts) and
reports the flicker with and without it. Needs the video extra: pip install 'camvidseg[video]'.
"""

_EXAMPLES = """examples:
  camvidseg video drive.mp4 -o drive_seg.mp4
  camvidseg video drive.mp4 -o drive_seg.mp4 --temporal ema --ema-alpha 0.7 --copy-audio
  camvidseg video drive.mov -o panel.mp4 --view panel --start 10 --end 40 --every 2
  camvidseg video drive.mp4 -o lossless.mkv --view color --labels-dir labels/ --classes 11
  camvidseg video frames/ -o frames.mp4 --fps 30000/1001 --batch-size 8
"""


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, e.g. 12.5 (got {text!r})") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected seconds >= 0 (got {text!r})")
    return value


def _alpha(text: str) -> float:
    value = unit_float(text)
    if value >= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1) (got {value})")
    return value


def _crf(text: str) -> int:
    value = non_negative_int(text)
    if value > 51:
        raise argparse.ArgumentTypeError(f"expected 0..51 (got {value})")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "video",
        help="segment a video or a folder of frames into an overlay, colour or panel video",
        description=_DESCRIPTION,
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", metavar="INPUT", help="video file, or folder of frames")
    parser.add_argument(
        "-o", "--output", required=True, type=Path, metavar="OUTPUT", help="output .mp4 or .mkv"
    )
    group = parser.add_argument_group("video output")
    group.add_argument(
        "--view",
        choices=_VIEWS,
        default="overlay",
        help="what the video shows: mask over the frame, the mask, or frame | mask | overlay "
        "(default: overlay)",
    )
    group.add_argument(
        "--alpha",
        type=unit_float,
        default=0.6,
        help="mask weight of the overlay, 0..1 (default: 0.6)",
    )
    group.add_argument(
        "--labels-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write frame_000000.png label maps, areas.csv and areas.png here",
    )
    group.add_argument(
        "--crf",
        type=_crf,
        default=None,
        metavar="Q",
        help="H.264 quality of an .mp4, 0..51, lower is better (default: 20; .mkv is lossless)",
    )
    group.add_argument(
        "--copy-audio",
        action="store_true",
        help="copy the input's first audio stream, cut like the video (no re-encoding)",
    )
    group.add_argument("--json", action="store_true", help="print the summary as JSON to stdout")
    frames = parser.add_argument_group("frames")
    frames.add_argument(
        "--start", type=_seconds, default=0.0, metavar="S", help="start at S seconds"
    )
    frames.add_argument(
        "--end", type=_seconds, default=None, metavar="S", help="stop before S seconds"
    )
    frames.add_argument(
        "--every", type=positive_int, default=1, metavar="N", help="keep every N-th frame"
    )
    frames.add_argument(
        "--max-frames", type=positive_int, default=None, metavar="N", help="at most N frames"
    )
    frames.add_argument(
        "--fps",
        default=None,
        metavar="RATE",
        help="frame rate of a folder of frames, e.g. 25 or 30000/1001 (default: 30); a video "
        "keeps its own",
    )
    temporal = parser.add_argument_group("temporal smoothing")
    temporal.add_argument(
        "--temporal",
        choices=("none", "ema"),
        default="none",
        help="ema: exponential moving average of the class probabilities over time, "
        "restarted at scene cuts (default: none)",
    )
    temporal.add_argument(
        "--ema-alpha",
        type=_alpha,
        default=None,
        metavar="A",
        help="weight of the running average against the new frame, 0..1: 0 is no smoothing, "
        "0.9 strong (default: 0.6)",
    )
    temporal.add_argument(
        "--cut-threshold",
        type=unit_float,
        default=None,
        metavar="T",
        help="a mean grey-level change between frames above T (0..1) is a scene cut "
        "(default: 0.15)",
    )
    add_segmenter_options(parser)
    add_verbosity(parser)
    parser.set_defaults(run=run)


def _segmenter(args: argparse.Namespace) -> tuple[SegmentConfig, Segmenter]:
    """The shared settings (config file + flags) and the Segmenter they describe."""
    config = config_from_args(args)
    return config, _config.build_segmenter(args, config)


def _usage(message: str) -> int:
    print(f"camvidseg: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _check_args(args: argparse.Namespace) -> str | None:
    """A usage problem of the options, or ``None``."""
    output: Path = args.output
    if output.suffix.lower() not in _SUFFIXES:
        return (
            f"{output}: the output must end in .mp4 (H.264, for browsers) or .mkv (lossless) "
            f"(got {output.suffix or 'no suffix'!r})"
        )
    if args.crf is not None and output.suffix.lower() == ".mkv":
        return "--crf applies to .mp4 outputs (.mkv is lossless)"
    if args.temporal == "none" and (args.ema_alpha is not None or args.cut_threshold is not None):
        return "--ema-alpha and --cut-threshold apply to --temporal ema"
    if args.cut_threshold == 0:
        return "--cut-threshold must be > 0 (1: never restart the average)"
    if args.end is not None and args.end <= args.start:
        return f"--end ({args.end} s) must be after --start ({args.start} s)"
    if Path(args.input).is_dir() and args.copy_audio:
        return "--copy-audio needs a video input (got a folder of frames)"
    if args.fps is not None and not Path(args.input).is_dir():
        return "--fps applies to a folder of frames (a video keeps its own rate)"
    try:
        same = output.resolve() == Path(args.input).resolve()
    except OSError:
        same = False
    if same:
        return f"{output}: the output would overwrite the input"
    return None


class _Progress:
    """A tqdm bar in frames/s, on a terminal only."""

    def __init__(self, total: int | None, *, enabled: bool) -> None:
        self.bar: Any = None
        if enabled:
            self.bar = progress_bar(total, "frame")

    def __call__(self, item: object) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f} %"


def _summary(report: VideoReport, args: argparse.Namespace, skipped: int) -> None:
    if args.json:
        print(
            json.dumps(
                {
                    "status": report.status,
                    "error": report.error,
                    "output": None if report.output is None else str(report.output),
                    "manifest": None if report.manifest is None else str(report.manifest),
                    "frames": report.frames,
                    "skipped": skipped,
                    "seconds": round(report.seconds, 3),
                    "flicker": dict(report.flicker),
                }
            ),
            flush=True,
        )
    if args.quiet or report.output is None or report.status != "ok":
        return  # an interrupted or failed run said what it wrote in its one line
    flicker = f"flicker {_percent(report.flicker['without_smoothing'])} of pixels per frame"
    if report.flicker["with_smoothing"] is not None:
        flicker += f" without smoothing, {_percent(report.flicker['with_smoothing'])} with ema"
    print(
        f"camvidseg: {report.frames} frames to {report.output} in {report.seconds:.1f} s "
        f"({report.frames_per_second:.2f} frames/s); {flicker}; manifest: {report.manifest}",
        file=sys.stderr,
    )


def _kept(report: VideoReport) -> str:
    """What an interrupted or failed run left, for its one line."""
    if report.output is None:
        return "nothing written"
    return (
        f"the {report.frames} frames before it are in {report.output}, closed and playable "
        f"(manifest: {report.manifest})"
    )


def run(args: argparse.Namespace) -> int:
    problem = _check_args(args)
    if problem is not None:
        return _usage(problem)
    from camvidseg.exceptions import VideoError
    from camvidseg.video import (
        FrameRange,
        TemporalSmoothing,
        VideoInterrupted,
        VideoOptions,
        open_frames,
        run_video,
    )
    from camvidseg.video.writer import DEFAULT_CRF

    frames = FrameRange(
        start=args.start, end=args.end, every=args.every, max_frames=args.max_frames
    )
    smoothing = TemporalSmoothing(mode=args.temporal)
    if args.ema_alpha is not None:
        smoothing = TemporalSmoothing(args.temporal, args.ema_alpha, smoothing.cut_threshold)
    if args.cut_threshold is not None:
        smoothing = TemporalSmoothing(args.temporal, smoothing.alpha, args.cut_threshold)
    skipped: list[str] = []
    progress = _Progress(None, enabled=sys.stderr.isatty() and not args.quiet)

    def on_skip(message: str) -> None:
        skipped.append(message)
        line = f"camvidseg: error: {message}"
        if progress.bar is not None:
            progress.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    try:
        source = open_frames(args.input, rate=args.fps, frames=frames, on_error=on_skip)
    except VideoError as exc:
        return report_error(exc)
    with source:
        config, segmenter = _segmenter(args)
        copy_audio = args.copy_audio
        if copy_audio and source.info.audio is None:
            print(
                f"camvidseg: warning: {args.input} has no audio; --copy-audio ignored",
                file=sys.stderr,
            )
            copy_audio = False
        options = VideoOptions(
            view=args.view,
            alpha=args.alpha,
            temporal=smoothing,
            frames=frames,
            labels_dir=args.labels_dir,
            crf=DEFAULT_CRF if args.crf is None else args.crf,
            copy_audio=copy_audio,
        )
        if progress.bar is not None:
            progress.bar.total = frames.expected(source.info.frames, source.info.rate)
            progress.bar.refresh()
        try:
            report = run_video(
                segmenter,
                source,
                args.output,
                options,
                model=model_handle(config),
                settings=config.to_dict(),
                on_frame=progress,
            )
        except VideoInterrupted as interrupted:
            progress.close()
            report = interrupted.report
            print(f"camvidseg: interrupted; {_kept(report)}", file=sys.stderr)
            _summary(report, args, len(skipped))
            return EXIT_INTERRUPTED
        finally:
            progress.close()
    if report.status == "error":
        print(f"camvidseg: error: {report.error}; {_kept(report)}", file=sys.stderr)
    _summary(report, args, len(skipped))
    if report.status == "error" or skipped:
        return EXIT_SOME_FAILED
    return EXIT_OK
