"""What ``predict`` reads: files, folders (recursively), globs, videos and live sources (a camera
``camera:N``, a network stream ``rtsp://``/``http://``..., an image sequence ``frames/%05d.png``),
each with an output name.

Expansion never aborts on one bad argument: a path that does not exist or a glob that matches
nothing becomes a failed input, reported by name like an unreadable image.
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from fasterseg.errors import FasterSegError, InputError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})
STREAM_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://")
_CAMERA = re.compile(r"^camera:(\d+)$")
_SEQUENCE = re.compile(r"%0?\d*d")  # OpenCV's printf-style image sequence, e.g. frames/%05d.png


@dataclass(frozen=True)
class Source:
    path: Path
    name: str  # output name: relative path inside a given folder (no suffix), else the file stem
    kind: str  # "image", "video" or "stream" (a camera, network stream or image sequence)
    uri: str = ""  # what OpenCV opens for a stream (the argument as given)


def is_sequence(argument: str) -> bool:
    """Whether ``argument`` is an image-sequence pattern (``frames/%05d.png``), not a camera or URL."""
    return bool(argument) and not argument.lower().startswith(STREAM_SCHEMES) and not _CAMERA.match(argument) \
        and bool(_SEQUENCE.search(Path(argument).name))


def live_source(argument: str) -> Source | None:
    """The live source an argument names, if it names one; its output name is made from it."""
    camera = _CAMERA.match(argument)
    if camera:
        return Source(Path(argument), f"camera{camera.group(1)}", "stream", argument)
    if argument.lower().startswith(STREAM_SCHEMES):
        rest = argument.split("://", 1)[1]  # host, path and query: `?cam=1` and `?cam=2` are two cameras
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", rest).strip("_.") or "stream"
        return Source(Path(argument), name, "stream", argument)  # two URLs that read as one name are refused
    if _SEQUENCE.search(Path(argument).name):
        name = _SEQUENCE.sub("", Path(argument).stem).strip("_-.") or "sequence"
        return Source(Path(argument), name, "stream", argument)
    return None


@dataclass
class Expansion:
    sources: list[Source]
    missing: list[tuple[str, str]]  # (argument, reason)
    ignored: list[tuple[Path, int]]  # (folder, files without an image/video suffix)
    unresolved: list[Path] = None  # entries of given folders that are neither files nor folders (broken or looping links)

    def __post_init__(self) -> None:
        self.unresolved = self.unresolved or []


def _kind(path: Path) -> str:
    return "video" if path.suffix.lower() in VIDEO_SUFFIXES else "image"


def expand_inputs(arguments: list[str]) -> Expansion:
    sources: list[Source] = []
    missing: list[tuple[str, str]] = []
    ignored: list[tuple[Path, int]] = []
    unresolved: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        live = None if path.exists() else live_source(argument)
        if live is not None:
            sources.append(live)
        elif path.is_dir():
            entries = list(path.rglob("*"))
            files = sorted(p for p in entries if p.is_file())
            unresolved += sorted(p for p in entries if not p.is_file() and not p.is_dir())
            known = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES]
            if len(known) < len(files):
                ignored.append((path, len(files) - len(known)))
            if not known:
                missing.append((argument, "folder holds no images or videos"))
            sources += [Source(p, str(p.relative_to(path).with_suffix("")), _kind(p)) for p in known]
        elif path.is_file():
            sources.append(Source(path, path.stem, _kind(path)))
        elif glob.has_magic(argument):
            matches = sorted(Path(p) for p in glob.glob(argument, recursive=True) if Path(p).is_file())
            if not matches:
                missing.append((argument, "pattern matches no files"))
            sources += [Source(p, p.stem, _kind(p)) for p in matches]
        else:
            missing.append((argument, "no such file or folder"))
    _check_unique(sources)
    return Expansion(sources, missing, ignored, unresolved)


def _check_unique(sources: list[Source]) -> None:
    """Two inputs with one output name would overwrite each other: refuse before any work."""
    seen: dict[str, Path] = {}
    for source in sources:
        other = seen.setdefault(source.name, source.path)
        if other != source.path:
            raise FasterSegError(f"{other} and {source.path} would both be written as '{source.name}'; "
                                 "pass their folder instead, or rename one")


def read_rgb(path: Path) -> np.ndarray:
    from fasterseg.data.base import read_image
    from fasterseg.errors import DatasetError

    try:
        return read_image(path)
    except DatasetError as exc:
        raise InputError(str(exc)) from None


BadFrame = Callable[[str, str], None]  # (frame's name, reason): called for each frame skipped
RETRIES = 5  # reads tried past a failed one before a video or stream is taken to have ended


class VideoReader:
    """RGB frames of a video, camera, stream or image sequence, with its frame rate and size.

    A frame that cannot be decoded is skipped and reported to ``on_bad`` with its name (the
    sequence file, or ``SOURCE frame N``), as a bad image is, and reading carries on: an image
    sequence is read file by file in index order (from any first index, across gaps, which
    ``on_note`` is told about); a video or stream is read past a failed frame for up to
    :data:`RETRIES` more reads, and a video that still ends short of its frame count says so."""

    def __init__(self, path: Path | str, max_frames: int | None = None, on_bad: BadFrame | None = None,
                 on_note: Callable[[str], None] | None = None):
        import cv2

        self.path = path
        self.on_bad = on_bad or (lambda name, reason: None)
        self.on_note = on_note or (lambda text: None)
        self.max_frames = max_frames
        self.sequence = sequence_files(str(path)) if is_sequence(str(path)) else None
        self.capture = None
        if self.sequence is not None:
            if not self.sequence:
                raise InputError(f"{path}: no file of the sequence exists")
            self.fps, count = 25.0, len(self.sequence)
            _note_gaps(str(path), [i for i, _ in self.sequence], self.on_note)
        else:
            camera = _CAMERA.match(str(path))
            try:
                self.capture = cv2.VideoCapture(int(camera.group(1))) if camera else cv2.VideoCapture(str(path))
            except (cv2.error, OverflowError, SystemError) as exc:  # e.g. a camera index beyond any device's
                raise InputError(f"{path}: cannot open {'camera' if camera else 'video'} ({str(exc).strip()})") from None
            if not self.capture.isOpened():
                raise InputError(f"{path}: cannot open {'camera' if camera else 'video'}")
            fps = self.capture.get(cv2.CAP_PROP_FPS)
            self.fps = fps if 0 < fps <= 240 else 25.0  # streams often report nothing or nonsense
            count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self.count = count if count > 0 else None  # what the container says it holds
        self.frames = self.count
        if max_frames is not None:
            self.frames = min(self.frames, max_frames) if self.frames else max_frames

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.sequence is not None:
            yield from self._sequence_frames()
        else:
            yield from self._capture_frames()

    def _sequence_frames(self) -> Iterator[np.ndarray]:
        read = 0
        for _, file in self.sequence:
            if self.max_frames is not None and read >= self.max_frames:
                return
            try:
                frame = read_rgb(file)
            except InputError as exc:
                self.on_bad(str(file), str(exc).removeprefix(f"{file}: "))
                continue
            read += 1
            yield frame

    def _capture_frames(self) -> Iterator[np.ndarray]:
        import cv2

        frames = self._decoded_frames()
        if not str(self.path).lower().startswith(STREAM_SCHEMES):
            yield from (cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in frames)
            return
        # A network stream is held back one frame: when the connection drops in the middle of a
        # part, the decoder still returns that part, its missing rows copied from the frame before
        # (FFmpeg's MJPEG decoder), so the last frame is checked before it is given out.
        before = held = None
        for frame in frames:
            if held is not None:
                yield cv2.cvtColor(held, cv2.COLOR_BGR2RGB)
            before, held = held, frame
        if held is None:
            return
        if self._ended_by_drop and before is not None and cut_short(held, before):
            self.on_bad(f"{self.path} last frame", "cut short when the stream dropped (its bottom rows repeat the "
                                                   "frame before it); not kept")
            return
        yield cv2.cvtColor(held, cv2.COLOR_BGR2RGB)

    def _decoded_frames(self) -> Iterator[np.ndarray]:
        """BGR frames as OpenCV decodes them, past failed reads; sets ``_ended_by_drop`` when the
        source stopped giving frames (rather than reaching ``max_frames`` or its frame count)."""
        self._ended_by_drop = False
        try:
            read = position = 0
            while self.max_frames is None or read < self.max_frames:
                ok, frame = self.capture.read()
                position += 1
                if not ok:
                    if self.count is not None and position > self.count:
                        return  # the end of a file
                    for _ in range(RETRIES):  # a garbled frame or part: try the ones after it
                        ok, frame = self.capture.read()
                        position += 1
                        if ok:
                            break
                    if not ok:
                        if self.count is not None and position - RETRIES <= self.count:
                            self.on_bad(f"{self.path} frames {position - RETRIES}-{self.count}",
                                        f"cannot be decoded (the video ends after {read} good frames of {self.count})")
                        self._ended_by_drop = True
                        return  # a stream that stopped, or a file cut short: the frames so far stand
                    self.on_bad(f"{self.path} frame {position - 1}", "cannot be decoded")
                read += 1
                yield frame
        finally:
            self.capture.release()


CUT_ROWS = 8  # a JPEG decodes in blocks of 8 or 16 rows: a part cut short misses at least its last 8


def cut_short(frame: np.ndarray, before: np.ndarray) -> bool:
    """Whether ``frame`` looks like a part decoded from a stream cut mid-transfer: its bottom
    :data:`CUT_ROWS` rows equal the previous frame's bit for bit and are not one flat colour
    (a black bar repeats in every frame and is no evidence)."""
    if frame.shape != before.shape or frame.shape[0] < CUT_ROWS:
        return False
    tail = frame[-CUT_ROWS:]
    return bool(np.array_equal(tail, before[-CUT_ROWS:]) and (tail != tail[0, 0]).any())


def sequence_files(pattern: str) -> list[tuple[int, Path]]:
    """(index, file) of every existing file that ``pattern`` (``frames/%05d.png``) names, by index."""
    path = Path(pattern)
    m = _SEQUENCE.search(path.name)
    digits = m.group(0)[1:-1].lstrip("0")
    width = int(digits) if digits else 0
    number = rf"(\d{{{width}}})" if m.group(0).startswith("%0") and width else r"(\d+)"
    regex = re.compile(re.escape(path.name[:m.start()]) + number + re.escape(path.name[m.end():]) + "$")
    folder = path.parent
    found = []
    if folder.is_dir():
        for entry in folder.iterdir():
            hit = regex.match(entry.name)
            if hit and entry.is_file():
                found.append((int(hit.group(1)), entry))
    return sorted(found)


def _note_gaps(pattern: str, indices: list[int], note: Callable[[str], None]) -> None:
    missing = indices[-1] - indices[0] + 1 - len(indices)
    if missing:
        note(f"{pattern}: {missing} index(es) between {indices[0]} and {indices[-1]} have no file; read across the gaps")

