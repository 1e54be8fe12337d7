"""Video pairs: PairedVideoReader's checks, the inferencer on videos, demo/video_demo.py."""
import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from fusion_mamba import FusionMambaInferencer
from fusion_mamba.apis import PairedVideoReader

REPO = Path(__file__).resolve().parents[2]


def write_video(path, frames, fps=10.0) -> str:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(frame)
    writer.release()
    return str(path)


def read_frames(path) -> list:
    capture, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame)


@pytest.fixture(scope='module')
def videos(tiny_detector, tmp_path_factory):
    """A 4-frame visible / infrared video pair of 160x128 at 10 fps, from the demo pairs."""
    folder = tmp_path_factory.mktemp('videos')
    root = tiny_detector['data_root']
    frames = {m: [cv2.imread(str(root / f'{m}/val/{i:06d}.jpg')) for i in range(4)]
              for m in ('visible', 'infrared')}
    return dict(folder=folder, frames=frames,
                visible=write_video(folder / 'street.mp4', frames['visible']),
                infrared=write_video(folder / 'street_ir.mp4', frames['infrared']))


@pytest.fixture(scope='module')
def inferencer(tiny_detector):
    return FusionMambaInferencer(str(tiny_detector['config']), str(tiny_detector['checkpoint']),
                                 device='cpu', show_progress=False)


def test_reader_properties_and_frames(videos):
    with PairedVideoReader(videos['visible'], videos['infrared']) as reader:
        assert (len(reader), reader.width, reader.height) == (4, 160, 128)
        assert reader.fps == pytest.approx(10.0)
        pairs = list(reader)
        assert len(list(reader)) == 4  # iterating again starts over
    for (visible, infrared), ref_vis, ref_ir in zip(pairs, read_frames(videos['visible']),
                                                    read_frames(videos['infrared'])):
        assert np.array_equal(visible, ref_vis) and np.array_equal(infrared, ref_ir)


def test_reader_rejects_videos_that_do_not_match(videos):
    folder, frames = videos['folder'], videos['frames']
    visible = videos['visible']
    shorter = write_video(folder / 'short.mp4', frames['infrared'][:3])
    with pytest.raises(ValueError, match=f'same number of frames: visible {visible} has 4 '
                                         f'frames, infrared {shorter} has 3 frames'):
        PairedVideoReader(visible, shorter)
    smaller = write_video(folder / 'small.mp4', [f[:, :128] for f in frames['infrared']])
    with pytest.raises(ValueError, match=r'same frame size: .* has 160x128, .*small.mp4 has '
                                         r'128x128 \(W x H\)'):
        PairedVideoReader(visible, smaller)
    faster = write_video(folder / 'fast.mp4', frames['infrared'], fps=12.0)
    with pytest.raises(ValueError, match='same frame rate: .* has 10 fps, .*fast.mp4 has 12 fps'):
        PairedVideoReader(visible, faster)
    with pytest.raises(FileNotFoundError, match='infrared video not found: .*none.mp4'):
        PairedVideoReader(visible, str(folder / 'none.mp4'))
    fake = folder / 'fake.mp4'
    fake.write_text('not a video')
    with pytest.raises(ValueError, match='cannot open the visible video .*fake.mp4'):
        PairedVideoReader(str(fake), visible)


def test_inferencer_on_videos_predicts_every_frame(videos, inferencer):
    predictions = list(inferencer.iter_predictions((videos['visible'], videos['infrared']),
                                                   batch_size=3))
    assert [p.name for p in predictions] == [f'street_{i:06d}' for i in range(4)]
    frames = zip(read_frames(videos['visible']), read_frames(videos['infrared']))
    for prediction, (visible, infrared) in zip(predictions, frames):
        (ref, ) = inferencer((visible, infrared))['predictions']
        pred = inferencer.pred2dict(prediction.data_sample)  # batched by 3: float rounding
        assert pred['labels'] == ref['labels'] and pred['label_names'] == ref['label_names']
        assert np.allclose(pred['bboxes'], ref['bboxes'], atol=1e-4)
        assert np.allclose(pred['scores'], ref['scores'], atol=1e-6)
    result = inferencer((videos['visible'], videos['infrared']))
    assert len(result['predictions']) == 4


def load_video_demo():
    spec = importlib.util.spec_from_file_location('video_demo', REPO / 'demo/video_demo.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_video_demo_writes_the_drawn_pairs(videos, tiny_detector, inferencer, tmp_path,
                                           capsys):
    out = tmp_path / 'drawn' / 'out.mp4'
    load_video_demo().main([videos['visible'], videos['infrared'],
                            str(tiny_detector['config']), str(tiny_detector['checkpoint']),
                            '--out', str(out), '--device', 'cpu', '--score-thr', '0.3',
                            '--batch-size', '2'])
    stdout = capsys.readouterr().out
    assert '4 frame pairs of 160x128 at 10 fps; drawing detections with score > 0.3' in stdout
    assert '4/4' in stdout and f'wrote {out}' in stdout  # the progress bar, then the file
    with PairedVideoReader(str(out), str(out)) as reader:
        assert (len(reader), reader.width, reader.height) == (4, 320, 128)
        assert reader.fps == pytest.approx(10.0)
        drawn = np.stack([visible for visible, _ in reader])
    predictions = inferencer.iter_predictions((videos['visible'], videos['infrared']))
    for frame, prediction in zip(drawn.astype(float), predictions):
        # the drawing at 0.3, up to video compression, and far from other thresholds'
        error = {thr: np.abs(frame - inferencer.visualize(prediction, thr)[..., ::-1]).mean()
                 for thr in (0.3, 0.6, 1.0)}
        assert error[0.3] < 15 and error[0.3] < min(error[0.6], error[1.0]) / 3, error


def test_video_demo_errors(videos, tiny_detector, tmp_path):
    demo = load_video_demo()
    args = [str(tiny_detector['config']), str(tiny_detector['checkpoint']), '--device', 'cpu']
    shorter = write_video(tmp_path / 'short.mp4', videos['frames']['infrared'][:2])
    with pytest.raises(ValueError, match='same number of frames'):
        demo.main([videos['visible'], shorter, *args, '--out', str(tmp_path / 'o.mp4')])
    with pytest.raises(ValueError, match='--out must end with .mp4 or .avi'):
        demo.main([videos['visible'], videos['infrared'], *args, '--out', str(tmp_path / 'o.gif')])
    assert not (tmp_path / 'o.mp4').exists()
