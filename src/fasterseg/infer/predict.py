"""``predict`` as a library function: inputs in, label PNGs / colour masks / overlays out.

Each input is read, segmented and written on its own: one unreadable file is reported by
name and skipped, and the caller learns how many failed. Outputs land under ``out_dir``
in one folder per kind (``labels/``, ``label_ids/``, ``color/``, ``overlay/``, ``video/``),
each file written atomically.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import Image
from tqdm import tqdm

from fasterseg.errors import FasterSegError
from fasterseg.infer.names import OUTPUT_KINDS
from fasterseg.infer.palette import colorize, overlay, palette_for, train_to_label_id_table
from fasterseg.infer.predictor import Predictor
from fasterseg.infer.sources import Source, VideoReader, expand_inputs, is_sequence, read_rgb
from fasterseg.errors import InputError
from fasterseg.errors import EvaluationError
from fasterseg.evaluate.submission import SubmissionWriter, submission_name
from fasterseg.utils.io import atomic_path, check_writable, refuse_overwriting_inputs, umask



@dataclass(frozen=True)
class LiveOptions:
    """How videos and live sources are processed."""

    max_frames: int | None = None  # stop after this many frames (a camera or stream never ends by itself)
    show: bool = False  # an on-screen window with the overlay and the frame rate (q or Esc stops)
    frame_labels: bool = False  # also write every frame's label map, labels/<name>/NNNNNN.png


@dataclass
class PredictReport:
    written: list[str] = field(default_factory=list)  # input names processed
    failed: list[tuple[str, str]] = field(default_factory=list)  # (input, reason)
    notes: list[str] = field(default_factory=list)
    submission: Path | None = None


def _save_png(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def run_predict(predictor: Predictor, inputs: list[str], out_dir: str | Path, outputs: tuple[str, ...] = ("labels", "color", "overlay"),
                alpha: float = 0.5, submission: str | Path | None = None,
                warn: Callable[[str], None] | None = None, overwrite: bool = False,
                live: "LiveOptions | None" = None) -> PredictReport:
    """Segment every input; see the module docstring. ``warn`` receives one line per failure as it happens.

    Before the model runs, every file it would write is checked: one that is also an input is
    always refused, and one that already exists (a ground-truth label in ``OUT/labels``, an
    earlier run's output) is refused unless ``overwrite``. Videos and live sources (cameras,
    network streams, image sequences) follow ``live``."""
    live = live or LiveOptions()
    if live.max_frames is not None and live.max_frames < 1:
        raise FasterSegError(f"--max-frames must be at least 1, got {live.max_frames}")
    unknown = [kind for kind in outputs if kind not in OUTPUT_KINDS]
    if unknown:
        raise FasterSegError(f"unknown output kind(s) {unknown}; choose from {OUTPUT_KINDS}")
    meta = predictor.model.meta
    if meta is None:
        raise FasterSegError("the model has no metadata (class names, palette); load it from a model file")
    palette = palette_for(meta)
    label_id_table = train_to_label_id_table(meta) if ("label_ids" in outputs or submission) else None
    out_dir = Path(out_dir)
    report = PredictReport()
    expansion = expand_inputs(inputs)
    for folder, count in expansion.ignored:
        report.notes.append(f"ignored {count} file(s) in {folder} without an image or video suffix")
    if expansion.unresolved:
        shown = ", ".join(str(p) for p in expansion.unresolved[:3])
        report.notes.append(f"skipped {len(expansion.unresolved)} entr{'y' if len(expansion.unresolved) == 1 else 'ies'} "
                            f"leading to no file (broken or looping links): {shown}")

    def fail(name: str, reason: str) -> None:
        report.failed.append((name, reason))
        if warn:
            warn(f"skipped {name}: {reason}")

    for argument, reason in expansion.missing:
        fail(argument, reason)
    images = [s for s in expansion.sources if s.kind == "image"]
    videos = [s for s in expansion.sources if s.kind in ("video", "stream")]
    if submission:
        images = _submittable(images, fail)
    _check_outputs(out_dir, images, videos, outputs, submission, overwrite, live.frame_labels)
    writer = SubmissionWriter(submission) if submission else None
    try:
        with tqdm(total=len(images), desc="images", unit="img", disable=not images, leave=False) as bar:
            for source, labels, image in _segment_images(predictor, images, fail, bar):
                _write_image_outputs(out_dir, source.name, image, labels, outputs, palette, label_id_table, alpha)
                if writer:
                    try:
                        writer.add(source.path.stem, labels)  # the frame's own name, whatever folder it is in
                    except EvaluationError as exc:
                        fail(str(source.path), f"not added to the submission: {exc}")
                        continue
                report.written.append(str(source.path))
        for source in videos:
            label = source.uri or str(source.path)
            try:
                frames, fps = _segment_video(predictor, source, out_dir, palette, alpha, live, fail, report.notes.append)
                report.written.append(label)
                report.notes.append(f"{label}: {frames} frame(s) at {fps:.1f} FPS end to end")
            except InputError as exc:
                fail(label, str(exc).removeprefix(f"{source.uri or source.path}: "))
            except FasterSegError as exc:  # its video could not be written (a full disk): this input failed
                fail(label, str(exc))
    except BaseException:
        if writer:
            writer.abort()
        raise
    if writer:
        report.submission = writer.close()
    return report


def _planned_outputs(out_dir: Path, images: list[Source], videos: list[Source], outputs: tuple[str, ...],
                     submission, frame_labels: bool) -> list[Path]:
    planned = [out_dir / kind / f"{s.name}.png" for s in images for kind in outputs]
    planned += [out_dir / "video" / f"{s.name}.mp4" for s in videos]
    planned += [out_dir / "labels" / s.name for s in videos if frame_labels]  # their folders of frame labels
    return planned + ([Path(submission)] if submission else [])


def _check_outputs(out_dir: Path, images: list[Source], videos: list[Source], outputs: tuple[str, ...], submission,
                   overwrite: bool, frame_labels: bool) -> None:
    check_writable(out_dir, FasterSegError, is_dir=True)
    if submission:
        check_writable(Path(submission), FasterSegError)
    planned = _planned_outputs(out_dir, images, videos, outputs, submission, frame_labels)
    inputs = [s.path for s in images + videos]
    # an image sequence's frames are its folder's files: a frame-label folder there would overwrite them
    inputs += [s.path.parent for s in videos if s.kind == "stream" and is_sequence(s.uri)]
    refuse_overwriting_inputs(planned, inputs, FasterSegError, "--out")
    if not overwrite:
        existing = [p for p in planned if p.exists()]
        if existing:
            more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
            raise FasterSegError(f"{existing[0]}{more} already exist(s); nothing was written. "
                                 "Choose an empty --out or pass --overwrite to replace them")


def _submittable(images: list[Source], fail: Callable) -> list[Source]:
    """The images a submission can hold (Cityscapes frame names, each frame once), checked before
    any model time is spent; the others fail by name and are not segmented."""
    kept, frames = [], {}
    for source in images:
        try:
            member = submission_name(source.path.stem)
        except EvaluationError as exc:
            fail(str(source.path), f"not segmented: {exc}, which --submission needs")
            continue
        if member in frames:
            fail(str(source.path), f"not segmented: {frames[member]} is the same frame ({member}) in the submission")
            continue
        frames[member] = source.path
        kept.append(source)
    return kept


def _segment_images(predictor: Predictor, images: list[Source], fail: Callable, bar) -> Iterator:
    """(source, labels, image) for every readable image; unreadable ones go to ``fail``."""

    def readable() -> Iterator[tuple[tuple[Source, np.ndarray], np.ndarray]]:
        for source in images:
            try:
                image = read_rgb(source.path)
            except InputError as exc:
                fail(str(source.path), str(exc).removeprefix(f"{source.path}: "))
                bar.update(1)
                continue
            yield (source, image), image  # the key carries the image for the overlay after batching

    for (source, image), labels in predictor.predict_stream(readable()):
        bar.update(1)
        yield source, labels, image


def _write_image_outputs(out_dir: Path, name: str, image: np.ndarray, labels: np.ndarray, outputs: tuple[str, ...],
                         palette: np.ndarray, label_id_table: np.ndarray | None, alpha: float) -> None:
    if "labels" in outputs:
        _save_png(out_dir / "labels" / f"{name}.png", labels)
    if "label_ids" in outputs:
        _save_png(out_dir / "label_ids" / f"{name}.png", label_id_table[labels])
    if "color" in outputs or "overlay" in outputs:
        color = colorize(labels, palette)
        if "color" in outputs:
            _save_png(out_dir / "color" / f"{name}.png", color)
        if "overlay" in outputs:
            _save_png(out_dir / "overlay" / f"{name}.png", overlay(image, color, alpha))


def _segment_video(predictor: Predictor, source: Source, out_dir: Path, palette: np.ndarray, alpha: float,
                   live: LiveOptions, bad_frame: Callable[[str, str], None] | None = None,
                   note: Callable[[str], None] | None = None) -> tuple[int, float]:
    """The overlay video ``video/<name>.mp4`` (mp4v), written under a temporary name then renamed;
    returns the frames written and the end-to-end frame rate. A stream that stops, or a window
    closed by the user, ends the video with the frames so far; a frame that cannot be decoded is
    skipped and given to ``bad_frame`` (name, reason) as a failed input."""
    import time

    import cv2

    reader = VideoReader(source.uri or source.path, max_frames=live.max_frames, on_bad=bad_frame, on_note=note)
    if live.frame_labels:  # an earlier run's frames (allowed by --overwrite) must not stand beside this run's
        for stale in (out_dir / "labels" / source.name).glob("[0-9][0-9][0-9][0-9][0-9][0-9].png"):
            stale.unlink()
    started = time.perf_counter()
    target = out_dir / "video" / f"{source.name}.mp4"
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".mp4", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    video_writer = None
    frames = 0
    interrupted: KeyboardInterrupt | None = None
    try:
        with tqdm(total=reader.frames, desc=source.name, unit="frame", leave=False) as bar:
            try:
                for frame, labels in predictor.predict_stream((f, f) for f in reader):
                    if video_writer is None:
                        height, width = frame.shape[:2]
                        video_writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), reader.fps, (width, height))
                        if not video_writer.isOpened():
                            raise FasterSegError(f"{target}: OpenCV cannot write an mp4v video here")
                    blended = cv2.cvtColor(overlay(frame, colorize(labels, palette), alpha), cv2.COLOR_RGB2BGR)
                    video_writer.write(blended)
                    if live.frame_labels:
                        _save_png(out_dir / "labels" / source.name / f"{frames + 1:06d}.png", labels)
                    frames += 1
                    bar.update(1)
                    if live.show and not _show(source.name, blended, frames / (time.perf_counter() - started)):
                        break
            except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (predict turns it into this): keep what was segmented
                interrupted = exc
        if video_writer is not None:
            video_writer.release()
        if frames == 0:
            if interrupted is not None:
                raise interrupted
            raise InputError(f"{source.uri or source.path}: no decodable frames")
        _check_video(tmp, target, frames)
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp's 0600 would make the video private
        os.replace(tmp, target)
        if interrupted is not None:
            raise interrupted
        return frames, frames / max(time.perf_counter() - started, 1e-9)
    finally:
        if video_writer is not None:
            video_writer.release()
        tmp.unlink(missing_ok=True)
        if live.show:
            try:
                cv2.destroyAllWindows()
            except cv2.error:  # no display: the error that brought us here is the one to report
                pass


def _check_video(path: Path, target: Path, frames: int) -> None:
    """OpenCV's writer fails silently (a full disk leaves a few kB that no player opens): read the
    finished file's frame count back before it takes the output's name."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
    finally:
        capture.release()
    if count < frames:
        free = shutil.disk_usage(path.parent).free
        raise FasterSegError(f"{target}: the video was not written whole ({count} of {frames} frames readable; "
                             f"{free / 1e6:.0f} MB free on its disk): nothing was kept")


def _show(name: str, frame_bgr: np.ndarray, fps: float) -> bool:
    """Draw the frame with its frame rate in a window; False once the user pressed q or Esc."""
    import cv2

    shown = frame_bgr.copy()
    cv2.putText(shown, f"{fps:.1f} FPS", (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA)
    try:
        cv2.imshow(f"fasterseg: {name}", shown)
        return cv2.waitKey(1) & 0xFF not in (ord("q"), 27)
    except cv2.error as exc:
        raise FasterSegError(f"--show needs a display and an OpenCV build with GUI support ({exc}); "
                             "drop --show to write the overlay video only") from None
