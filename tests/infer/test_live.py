"""Live input for predict: a real MJPEG stream served on the loopback interface, and an image
sequence pattern, read through OpenCV like a camera or network stream."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from PIL import Image

from fasterseg.cli import main
from fasterseg.errors import FasterSegError
from fasterseg.infer.sources import expand_inputs, live_source

cv2 = pytest.importorskip("cv2")

FRAMES = 6


def _frame(i: int) -> np.ndarray:
    img = np.zeros((64, 96, 3), np.uint8)
    img[: 16 + 6 * i] = (200, 120, 40)
    return img


@contextmanager
def _mjpeg_server(parts):
    """http://127.0.0.1:PORT/live.mjpg on loopback: the JPEG bytes ``parts()`` yields (a bounded
    iterator) as multipart/x-mixed-replace, then the connection drops, as a camera that goes away.
    A part given as ``(bytes, promised length)`` is sent short and the connection dropped there."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            try:
                for data in parts():
                    if isinstance(data, tuple):  # (the bytes sent, the length promised): a drop mid-part
                        data, promised = data
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % promised)
                        self.wfile.write(data)
                        self.wfile.flush()
                        return
                    self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % len(data))
                    self.wfile.write(data + b"\r\n")
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/live.mjpg"
    finally:
        server.shutdown()
        server.server_close()


def _jpeg(i: int) -> bytes:
    return cv2.imencode(".jpg", _frame(i % 6))[1].tobytes()


@pytest.fixture()
def mjpeg_stream():
    """FRAMES JPEG frames, then the server drops the connection."""

    def parts():
        for i in range(FRAMES):
            yield _jpeg(i)
            time.sleep(0.01)

    with _mjpeg_server(parts) as url:
        yield url



def test_a_loopback_stream_gives_one_label_map_per_frame_and_ends_gracefully(cityscapes_tiny_model, mjpeg_stream,
                                                                              tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["predict", "--model", cityscapes_tiny_model, "--input", mjpeg_stream, "--out", str(out),
               "--frame-labels"])
    assert rc == 0
    name = live_source(mjpeg_stream).name
    labels = sorted((out / "labels" / name).glob("*.png"))
    assert [p.name for p in labels] == [f"{i:06d}.png" for i in range(1, FRAMES + 1)]
    assert np.asarray(Image.open(labels[0])).shape == (64, 96)
    video = cv2.VideoCapture(str(out / "video" / f"{name}.mp4"))  # the stream's end kept every frame
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == FRAMES
    video.release()
    assert f"{FRAMES} frame(s) at" in capsys.readouterr().err


def test_max_frames_stops_a_stream_early(cityscapes_tiny_model, mjpeg_stream, tmp_path):
    out = tmp_path / "out"
    assert main(["predict", "--model", cityscapes_tiny_model, "--input", mjpeg_stream, "--out", str(out),
                 "--frame-labels", "--max-frames", "3"]) == 0
    assert len(list((out / "labels").rglob("*.png"))) == 3


def test_an_image_sequence_pattern_is_read_in_order(cityscapes_tiny_model, tmp_path):
    (tmp_path / "seq").mkdir()
    for i in range(4):
        cv2.imwrite(str(tmp_path / "seq" / f"cam_{i:04d}.png"), _frame(i))
    pattern = str(tmp_path / "seq" / "cam_%04d.png")
    (source,) = expand_inputs([pattern]).sources
    assert source.kind == "stream" and source.name == "cam"
    out = tmp_path / "out"
    assert main(["predict", "--model", cityscapes_tiny_model, "--input", pattern, "--out", str(out), "--frame-labels"]) == 0
    assert len(list((out / "labels" / "cam").glob("*.png"))) == 4


def test_a_stream_that_cannot_be_opened_is_a_failed_input_not_a_crash(cityscapes_tiny_model, tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    rc = main(["predict", "--model", cityscapes_tiny_model, "--input", f"http://127.0.0.1:{port}/none.mjpg",
               "--out", str(tmp_path / "out")])
    assert rc == 1


def test_live_arguments_are_recognised():
    assert live_source("camera:0").name == "camera0" and live_source("camera:0").uri == "camera:0"
    assert live_source("rtsp://10.0.0.2:554/cam/1?x=2").name == "10.0.0.2_554_cam_1_x_2"
    # two cameras of one server, told apart by their query, get two outputs (issue 35)
    names = [s.name for s in expand_inputs(["http://127.0.0.1:9/v.mjpg?cam=1", "http://127.0.0.1:9/v.mjpg?cam=2"]).sources]
    assert names == ["127.0.0.1_9_v.mjpg_cam_1", "127.0.0.1_9_v.mjpg_cam_2"]
    with pytest.raises(FasterSegError, match="would both be written as"):  # URLs that read as one name are refused
        expand_inputs(["http://127.0.0.1:9/v.mjpg?cam=1", "http://127.0.0.1:9/v.mjpg&cam=1"])
    assert live_source("photo.png") is None


def test_frame_labels_never_overwrite_the_sequence_they_come_from(cityscapes_tiny_model, tmp_path, capsys):
    """An image sequence stored where its frame labels would go (OUT/labels/<name>/): refused
    even with --overwrite, the frames untouched (issue 35)."""
    frames = tmp_path / "out" / "labels" / "sequence"  # `%06d.png` is named "sequence"; its labels go here as %06d.png
    frames.mkdir(parents=True)
    for i in range(3):
        cv2.imwrite(str(frames / f"{i + 1:06d}.png"), _frame(i))
    before = {p.name: p.read_bytes() for p in frames.iterdir()}
    pattern = str(frames / "%06d.png")
    assert main(["predict", "--model", cityscapes_tiny_model, "--input", pattern, "--out", str(tmp_path / "out"),
                 "--frame-labels", "--overwrite"]) != 0
    assert "is also an input of this command" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in frames.iterdir()} == before


@pytest.fixture()
def endless_stream():
    """An MJPEG stream that goes on (a frame every 20 ms, at most 30 s: bounded), as a camera does."""

    def parts():
        deadline, i = time.monotonic() + 30, 0
        while time.monotonic() < deadline:
            yield _jpeg(i)
            i += 1
            time.sleep(0.02)

    with _mjpeg_server(parts) as url:
        yield url


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_stopping_an_endless_stream_keeps_its_video(cityscapes_tiny_model, endless_stream, tmp_path, signame):
    """SIGTERM (timeout, service managers) and SIGINT (Ctrl-C) end predict with the video of what
    was segmented, playable and readable by others, and no hidden temporary file (issue 35)."""
    import os
    import signal
    import subprocess
    import sys

    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "fasterseg.cli", "predict", "--model", cityscapes_tiny_model,
                             "--input", endless_stream, "--out", str(out), "--frame-labels"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=lambda: os.umask(0o022))
    name = live_source(endless_stream).name
    labels = out / "labels" / name
    deadline = time.monotonic() + 60
    while len(list(labels.glob("*.png"))) < 5:
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode() if proc.poll() else "timeout"
        time.sleep(0.1)
    proc.send_signal(getattr(signal, signame))
    proc.wait(timeout=30)
    assert proc.returncode == 130, proc.stderr.read().decode()
    video = out / "video" / f"{name}.mp4"
    capture = cv2.VideoCapture(str(video))
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames >= 5
    assert video.stat().st_mode & 0o044 == 0o044  # readable by others under umask 022, as the PNGs are
    assert not [p for p in (out / "video").iterdir() if p.name.startswith(".")]


def _sequence(folder, indices, bad=()):
    folder.mkdir(parents=True, exist_ok=True)
    for i in indices:
        path = folder / f"f_{i:05d}.png"
        if i in bad:
            path.write_bytes(b"\\x89PNG\\r\\n\\x1a\\n not really a png")
        else:
            cv2.imwrite(str(path), _frame(i % 6))
    return str(folder / "f_%05d.png")


@pytest.mark.parametrize("bad", [(3,), (1,)], ids=["middle", "first"])
def test_a_bad_frame_in_a_sequence_is_skipped_named_and_counted(cityscapes_tiny_model, tmp_path, capsys, bad):
    pattern = _sequence(tmp_path / "seq", range(1, 7), bad=bad)
    out = tmp_path / "out"
    assert main(["predict", "--model", cityscapes_tiny_model, "--input", pattern, "--out", str(out), "--frame-labels"]) == 1
    err = capsys.readouterr().err
    assert f"f_{bad[0]:05d}.png" in err and "1 input(s) failed" in err
    assert len(list((out / "labels" / "f").glob("*.png"))) == 5  # every other frame


def test_a_sequence_may_start_anywhere_and_have_gaps(cityscapes_tiny_model, tmp_path, capsys):
    pattern = _sequence(tmp_path / "seq", [10, 11, 12, 15, 16])
    out = tmp_path / "out"
    assert main(["predict", "--model", cityscapes_tiny_model, "--input", pattern, "--out", str(out), "--frame-labels"]) == 0
    assert "2 index(es) between 10 and 16 have no file" in capsys.readouterr().err
    assert len(list((out / "labels" / "f").glob("*.png"))) == 5


def test_a_video_cut_short_says_which_frames_it_lost(cityscapes_tiny_model, tmp_path, capsys):
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (96, 64))
    for i in range(20):
        writer.write(_frame(i % 6))
    writer.release()
    data = video.read_bytes()
    video.write_bytes(data[: len(data) // 2])  # cut in half: the container still says 20 frames
    out = tmp_path / "out"
    code = main(["predict", "--model", cityscapes_tiny_model, "--input", str(video), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "cannot be decoded (the video ends after" in err and "of 20)" in err
    capture = cv2.VideoCapture(str(out / "video" / "clip.mp4"))  # the frames before the cut stand
    assert capture.read()[0]


def test_a_stream_with_one_bad_part_carries_on(cityscapes_tiny_model, tmp_path, capsys):
    """An MJPEG stream whose fourth part is not a JPEG: the parts after it are still segmented."""

    def parts():
        for i in range(8):
            yield b"garbage" * 50 if i == 3 else _jpeg(i)
            time.sleep(0.01)

    with _mjpeg_server(parts) as url:
        out = tmp_path / "out"
        main(["predict", "--model", cityscapes_tiny_model, "--input", url, "--out", str(out), "--frame-labels"])
        written = len(list((out / "labels" / live_source(url).name).glob("*.png")))
        assert written >= 6, capsys.readouterr().err  # the parts after the bad one too


def _textured(i: int) -> np.ndarray:
    """A frame with detail in every row (a cut part's copied rows are then evidence)."""
    return (np.random.default_rng(i).random((64, 96, 3)) * 255).astype(np.uint8)


def test_a_stream_dropped_mid_frame_does_not_keep_the_half_decoded_frame(cityscapes_tiny_model, tmp_path, capsys):
    """The connection drops halfway through the fifth part: the decoder still returns it, its
    missing rows copied from the fourth frame. The four whole frames are kept, the cut one is
    named and not kept."""
    jpegs = [cv2.imencode(".jpg", _textured(i))[1].tobytes() for i in range(5)]

    def parts():
        for data in jpegs[:4]:
            yield data
            time.sleep(0.01)
        yield jpegs[4][: len(jpegs[4]) // 2], len(jpegs[4])  # half of the part its header promises

    with _mjpeg_server(parts) as url:
        out = tmp_path / "out"
        code = main(["predict", "--model", cityscapes_tiny_model, "--input", url, "--out", str(out), "--frame-labels"])
        err = capsys.readouterr().err
    name = live_source(url).name
    assert len(list((out / "labels" / name).glob("*.png"))) == 4, err
    assert "last frame" in err and "cut short when the stream dropped" in err
    assert code == 1  # a frame was lost, as a bad image makes the run fail


def test_cut_short_needs_repeated_rows_with_detail():
    from fasterseg.infer.sources import cut_short

    a, b = _textured(1), _textured(2)
    cut = b.copy()
    cut[40:] = a[40:]
    assert cut_short(cut, a) and not cut_short(b, a)
    bar_a, bar_b = a.copy(), b.copy()
    bar_a[-10:] = bar_b[-10:] = (0, 0, 20)  # a flat bar repeats in every frame: no evidence
    assert not cut_short(bar_b, bar_a)


def test_a_video_that_was_not_written_whole_is_not_kept(cityscapes_tiny_model, tmp_path, capsys, monkeypatch):
    """OpenCV's writer drops frames silently on a full disk: here it stops writing after two
    frames, as there. The truncated file does not take the video's name and the input fails."""
    real = cv2.VideoWriter

    class FillsUp:
        def __init__(self, *args):
            self.inner, self.n = real(*args), 0

        def isOpened(self):
            return self.inner.isOpened()

        def write(self, frame):
            self.n += 1
            if self.n <= 2:
                self.inner.write(frame)

        def release(self):
            self.inner.release()

    monkeypatch.setattr(cv2, "VideoWriter", FillsUp)
    pattern = _sequence(tmp_path / "seq", range(1, 7))
    out = tmp_path / "out"
    assert main(["predict", "--model", cityscapes_tiny_model, "--input", pattern, "--out", str(out)]) == 1
    assert "the video was not written whole (2 of 6 frames readable" in capsys.readouterr().err
    assert not (out / "video" / "f.mp4").exists() and not [p for p in (out / "video").iterdir()]


def test_overwriting_frame_labels_leaves_no_stale_frames(cityscapes_tiny_model, tmp_path):
    out = tmp_path / "out"
    long = _sequence(tmp_path / "long", range(1, 7))
    assert main(["predict", "--model", cityscapes_tiny_model, "--input", long, "--out", str(out), "--frame-labels"]) == 0
    short = _sequence(tmp_path / "short" , range(1, 4))  # the same name ("f"), fewer frames
    assert main(["predict", "--model", cityscapes_tiny_model, "--input", short, "--out", str(out), "--frame-labels",
                 "--overwrite"]) == 0
    assert sorted(p.name for p in (out / "labels" / "f").iterdir()) == ["000001.png", "000002.png", "000003.png"]
