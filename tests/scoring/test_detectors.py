"""The `mediapipe-torch` detector: its TFLite interpreter against mediapipe's own TFLite runtime, op for op on the
bundled models; its face pipeline against mediapipe's legacy graphs; batching, tiling and empty input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from molebench.registry import DETECTORS
from molebench.scoring.detect.mediapipe_legacy import mediapipe_module_file
from molebench.scoring.detect.mediapipe_torch import MediaPipeTorch
from molebench.scoring.detect.tflite_torch import TFLiteModel

MODELS = {  # file, input size, outputs, input value range (the graphs' ImageToTensorCalculator ranges)
    "palm": ("palm_detection/palm_detection_full.tflite", 192, 2, 0.0),
    "hand_landmark": ("hand_landmark/hand_landmark_full.tflite", 224, 4, 0.0),
    "face_full_range": ("face_detection/face_detection_full_range_sparse.tflite", 192, 2, -1.0),
    "face_short_range": ("face_detection/face_detection_short_range.tflite", 128, 2, -1.0),
    "face_landmark": ("face_landmark/face_landmark.tflite", 192, 2, 0.0),
}


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())


@pytest.fixture(scope="module")
def grace_hopper() -> Image.Image:
    from matplotlib import cbook

    return Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB")


@pytest.fixture(scope="module")
def detector() -> MediaPipeTorch:
    return MediaPipeTorch()


def mediapipe_tflite_outputs(relative: str, rgb: np.ndarray, outputs: int, low: float) -> list[np.ndarray]:
    """The model run by mediapipe's own TFLite runtime (its graph framework: image -> tensor -> inference -> floats)
    on an image already at the model's input size (so ImageToTensor is an identity resampling)."""
    from google.protobuf import text_format
    from mediapipe.framework import calculator_pb2
    from mediapipe.python import packet_creator, packet_getter
    from mediapipe.python._framework_bindings import calculator_graph, image_frame, resource_util

    resource_util.set_resource_dir(str(mediapipe_module_file("").parent.parent))
    height, width = rgb.shape[:2]
    text = f"""input_stream: "image"
    node {{ calculator: "ImageToTensorCalculator" input_stream: "IMAGE:image" output_stream: "TENSORS:x"
      options {{ [mediapipe.ImageToTensorCalculatorOptions.ext] {{ output_tensor_width: {width}
        output_tensor_height: {height} output_tensor_float_range {{ min: {low} max: 1.0 }} }} }} }}
    node {{ calculator: "InferenceCalculator" input_stream: "TENSORS:x" output_stream: "TENSORS:y"
      options {{ [mediapipe.InferenceCalculatorOptions.ext] {{ model_path: "mediapipe/modules/{relative}"
        delegate {{ tflite {{}} }} }} }} }}
    node {{ calculator: "SplitTensorVectorCalculator" input_stream: "y"
      {" ".join(f'output_stream: "t{i}"' for i in range(outputs))}
      options {{ [mediapipe.SplitVectorCalculatorOptions.ext] {{
        {" ".join(f"ranges {{ begin: {i} end: {i + 1} }}" for i in range(outputs))} }} }} }}
    """ + "".join(f'output_stream: "o{i}" node {{ calculator: "TensorsToFloatsCalculator" '
                  f'input_stream: "TENSORS:t{i}" output_stream: "FLOATS:o{i}" }}\n' for i in range(outputs))
    graph = calculator_graph.CalculatorGraph(
        graph_config=text_format.Parse(text, calculator_pb2.CalculatorGraphConfig()))
    found: dict[str, np.ndarray] = {}
    for i in range(outputs):
        graph.observe_output_stream(f"o{i}", lambda stream, packet: found.__setitem__(
            stream, np.array(packet_getter.get_float_list(packet), np.float32)))
    graph.start_run()
    frame = packet_creator.create_image_frame(image_format=image_frame.ImageFormat.SRGB, data=rgb)
    graph.add_packet_to_input_stream("image", frame.at(0))
    graph.close()
    return [found[f"o{i}"] for i in range(outputs)]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_interpreter_matches_mediapipe_tflite_runtime(name, astronaut):
    relative, size, outputs, low = MODELS[name]
    rgb = np.ascontiguousarray(np.asarray(astronaut.resize((size, size), Image.BILINEAR)))
    reference = mediapipe_tflite_outputs(relative, rgb, outputs, low)
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float() / 255.0 * (1.0 - low) + low
    with torch.inference_mode():
        ours = TFLiteModel(mediapipe_module_file(relative))(x.repeat(2, 1, 1, 1))
    assert len(ours) == outputs
    for mine, theirs in zip(ours, reference):
        assert mine[0].numel() == theirs.size
        assert torch.allclose(mine[0], mine[1], rtol=1e-5, atol=1e-5)  # the batch dimension is a batch
        scale = max(1.0, float(np.abs(theirs).max()))  # outputs reach ~190 (raw SSD logits and pixel offsets)
        assert np.abs(mine[0].numpy().ravel() - theirs).max() <= 1e-5 * scale + 1e-4, name


def test_log_odds_outputs_are_the_flags_before_their_sigmoid(astronaut):
    """`log_odds=True` returns the hand flag and handedness before the model's final sigmoid (the scale of
    `quality`), every other output unchanged."""
    x = torch.from_numpy(np.asarray(astronaut.resize((224, 224)), np.float32).copy()).permute(2, 0, 1)[None] / 255.0
    path = mediapipe_module_file(MODELS["hand_landmark"][0])
    with torch.inference_mode():
        probabilities, log_odds = TFLiteModel(path)(x), TFLiteModel(path, log_odds=True)(x)
    assert torch.equal(probabilities[0], log_odds[0]) and torch.equal(probabilities[3], log_odds[3])
    for index in (1, 2):
        assert torch.allclose(torch.sigmoid(log_odds[index]), probabilities[index], atol=1e-6)
        assert not torch.allclose(log_odds[index], probabilities[index])


def test_face_mesh_and_score_match_mediapipe_legacy(astronaut, grace_hopper):
    """The whole face path (letterbox, anchors, decoding, weighted NMS, rotated ROI, crop, projection) against
    mediapipe's FaceMesh (short-range detector) and FaceDetection (full range) graphs."""
    import mediapipe as mp

    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=False)
    faces = mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5)
    short = MediaPipeTorch(tiles=(), face_model="short").detect([astronaut, grace_hopper])
    full = MediaPipeTorch(tiles=(), face_model="full", min_presence=0.5).detect([astronaut, grace_hopper])
    for image, ours_short, ours_full in zip([astronaut, grace_hopper], short, full):
        rgb = np.asarray(image)
        height, width = rgb.shape[:2]
        landmarks = mesh.process(rgb).multi_face_landmarks
        theirs = np.array([[p.x * width, p.y * height] for p in landmarks[0].landmark])
        assert [r.part for r in ours_short] == ["face"] and ours_short[0].keypoints.shape == (468, 3)
        assert np.abs(ours_short[0].keypoints[:, :2] - theirs).max() <= 1e-3 * max(width, height)
        score = faces.process(rgb).detections[0].score[0]
        assert [r.part for r in ours_full] == ["face"] and abs(ours_full[0].presence - score) < 2e-3


def test_regions_are_complete_and_batch_size_invariant(astronaut, grace_hopper):
    settings = {"tiles": (), "face_model": "short"}
    one = MediaPipeTorch(batch_size=1, **settings).detect([astronaut, grace_hopper])
    both = MediaPipeTorch(batch_size=2, **settings).detect([astronaut, grace_hopper])
    for a, b in zip(one, both):
        assert len(a) == len(b) == 1
        assert np.allclose(a[0].keypoints, b[0].keypoints, atol=1e-3) and abs(a[0].presence - b[0].presence) < 1e-5
    face = both[0][0]
    assert face.part == "face" and 0.5 <= face.presence <= 1 and face.quality > 5  # log-odds: P(face) > 0.993
    assert math.isnan(face.handedness)
    x0, y0, x1, y1 = face.box  # the face mesh's extent, around the annotated face (x 168-266, y 68-180)
    assert (x0, y0, x1, y1) == pytest.approx((face.keypoints[:, 0].min(), face.keypoints[:, 1].min(),
                                              face.keypoints[:, 0].max(), face.keypoints[:, 1].max()))
    assert 150 < x0 < 200 and 240 < x1 < 290 and 50 < y0 < 100 and 150 < y1 < 200


def test_hand_regions_carry_palm_score_hand_flag_and_21_keypoints(astronaut):
    """No photograph of a hand ships in this environment's packages: with the gates opened, the palm detector's
    weak candidates on the astronaut photograph go through the whole hand path and are reported with every field."""
    regions = MediaPipeTorch(tiles=(), min_presence=0.02, min_quality=0.0).detect([astronaut])[0]
    hands = [r for r in regions if r.part == "hand"]
    assert hands and all(r.keypoints.shape == (21, 3) for r in hands)
    assert all(0.02 <= r.presence <= 1 and math.isfinite(r.quality) and 0 <= r.handedness <= 1 for r in hands)
    assert max(r.quality for r in hands) < 0.0  # log-odds below even odds: no hand is reported by default
    assert [r.presence for r in hands] == sorted((r.presence for r in hands), reverse=True)


def test_empty_and_people_free_images_give_no_regions(detector):
    from skimage import data

    blank = [Image.new("RGB", (1, 1)), Image.new("L", (300, 20), 128), Image.new("RGBA", (64, 64))]
    photos = [Image.fromarray(data.chelsea()), Image.fromarray(data.rocket())]
    assert detector.detect(blank + photos) == [[]] * 5
    assert detector.detect([]) == []


def test_tiles_find_a_face_too_small_for_the_whole_image_pass(astronaut, detector):
    canvas = Image.new("RGB", (1024, 1024), (120, 120, 120))
    canvas.paste(astronaut.resize((256, 256)), (600, 300))  # the face is ~50 px of 1024
    assert MediaPipeTorch(tiles=()).detect([canvas]) == [[]]
    (face,) = detector.detect([canvas])[0]
    assert face.part == "face" and 680 < (face.box[0] + face.box[2]) / 2 < 740


def test_registered_versioned_and_checked():
    assert DETECTORS.get("mediapipe-torch") is MediaPipeTorch
    default, tiled = MediaPipeTorch(), MediaPipeTorch(tiles=(2, 3))
    assert default.version.startswith("mediapipe-torch/v2/w-") and "/s-" not in default.version
    assert tiled.version.startswith(default.version + "/s-")
    assert set(default.weight_files()) == {"palm_detection", "hand_landmark", "face_detection", "face_landmark"}
    with pytest.raises(ValueError, match="face_model"):
        MediaPipeTorch(face_model="long")
    with pytest.raises(ValueError, match="tiles"):
        MediaPipeTorch(tiles=(1,))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the batched path on the device)")
def test_cuda_matches_cpu(astronaut, grace_hopper, detector):
    on_gpu = MediaPipeTorch(device="cuda").detect([astronaut, grace_hopper])
    for a, b in zip(detector.detect([astronaut, grace_hopper]), on_gpu):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert np.abs(x.keypoints[:, :2] - y.keypoints[:, :2]).max() < 1.0 and abs(x.presence - y.presence) < 1e-3
