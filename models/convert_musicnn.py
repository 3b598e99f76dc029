"""Convert musicnn's MSD_musicnn TensorFlow-1 checkpoint to ONNX.

What this does
--------------
1. Rebuilds musicnn's *inference* graph (``is_training=False``) for the
   MSD_musicnn model with musicnn's own ``define_model`` and restores the
   weights shipped inside the ``musicnn==0.1.0`` wheel.
2. Freezes the graph (variables -> constants) and converts it with tf2onnx
   (opset 17) to ``msd_musicnn.onnx`` next to this script, with readable
   tensor names and a dynamic batch dimension:

       input   melspec    float32 [batch, 187, 96]   log-mel patches
       output  embedding  float32 [batch, 200]       dense layer, pre-ReLU
       output  tags       float32 [batch, 50]        sigmoid tag scores

3. Writes a parity fixture ``msd_musicnn_reference.npz`` (keys ``input``,
   ``embedding``, ``tags``): a fixed pseudo-random input of shape
   [3, 187, 96] and the outputs TensorFlow computes for it, so that the ONNX
   file can be checked later without TensorFlow. It also prints the largest
   absolute difference between TensorFlow and ONNX Runtime on that input.

How to run it
-------------
This is a one-off, run by hand. It needs TensorFlow, which is about 2 GB, so
use a separate virtualenv outside the repository:

    python3 -m venv /tmp/tfvenv
    /tmp/tfvenv/bin/pip install "tensorflow-cpu==2.21.*" "tf-keras==2.21.0" \
        "tf2onnx==1.17.*" onnx onnxruntime numpy
    /tmp/tfvenv/bin/pip install --no-deps musicnn==0.1.0
    /tmp/tfvenv/bin/python models/convert_musicnn.py

(``--no-deps`` because musicnn's metadata pins an ancient numpy and pulls in
librosa, neither of which the conversion needs.)

Neither the AudioMuse server nor CI need TensorFlow: they only load the
committed ONNX file with onnxruntime. Re-running the conversion gives a
numerically identical model, but the file is not byte-identical.

Why the graph is rebuilt
------------------------
The ``.meta`` file in the wheel is the *training* graph and
``tf.compat.v1.train.import_meta_graph`` fails on it with current
TensorFlow. Building the graph again from musicnn's Python code, inside
``tf.name_scope('model')`` exactly as musicnn's own extractor does, gives the
same variable names, so a plain ``Saver`` restores it. The ``checkpoint``
index file in the wheel points to a directory on the author's machine, so the
weights are restored from the path *prefix* ``.../musicnn/MSD_musicnn/``
(the data files are literally named ``.index``, ``.data-00000-of-00001``).
"""

from __future__ import annotations

import json
import os
import sys

# musicnn uses tf.compat.v1.layers, which need the Keras-2 implementation
# (package tf-keras). This must be set before TensorFlow is imported.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import musicnn  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf2onnx  # noqa: E402
from musicnn import configuration as musicnn_config  # noqa: E402
from musicnn import models as musicnn_models  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ONNX_PATH = os.path.join(HERE, "msd_musicnn.onnx")
REFERENCE_PATH = os.path.join(HERE, "msd_musicnn_reference.npz")

MODEL_NAME = "MSD_musicnn"
N_FRAMES = 187  # ~3 s at 16 kHz, hop 256: what the model was trained on
N_MELS = musicnn_config.N_MELS  # 96
TAGS = list(musicnn_config.MSD_LABELS)  # 50 tags, in output order

# TensorFlow tensor names of the rebuilt graph -> names used in the ONNX file.
TF_INPUT = "model/Placeholder:0"
TF_EMBEDDING = "model/dense/BiasAdd:0"  # 200-d, before the ReLU
TF_TAGS = "model/Sigmoid:0"
RENAME = {TF_INPUT: "melspec", TF_EMBEDDING: "embedding", TF_TAGS: "tags"}

OPSET = 17
REFERENCE_SEED = 20240611
REFERENCE_BATCH = 3


def checkpoint_prefix() -> str:
    """Path prefix of the MSD_musicnn weights inside the installed wheel."""
    # The trailing separator matters: the files are named ".index" etc., so
    # the prefix is the directory itself followed by "/".
    return os.path.join(os.path.dirname(musicnn.__file__), MODEL_NAME) + os.sep


def build_and_restore(sess: tf.compat.v1.Session) -> None:
    """Build the inference graph in the session's graph and load the weights."""
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, N_FRAMES, N_MELS])
        # is_training=False as a Python bool: batch norm uses its moving
        # averages and dropout disappears, so no training-mode placeholder.
        outputs = musicnn_models.define_model(x, False, MODEL_NAME, len(TAGS))
        logits = outputs[0]
        tf.nn.sigmoid(logits)

    graph = sess.graph
    # Fail early if musicnn ever names things differently.
    for name in RENAME:
        graph.get_tensor_by_name(name)
    assert x.name == TF_INPUT, x.name

    variables = tf.compat.v1.global_variables()
    prefix = checkpoint_prefix()
    # tf.train.list_variables() would treat a path ending in "/" as a
    # directory and follow the stale `checkpoint` file, so read the prefix
    # directly.
    reader = tf.compat.v1.train.NewCheckpointReader(prefix)
    in_checkpoint = reader.get_variable_to_shape_map()
    for var in variables:
        vname = var.op.name
        if vname not in in_checkpoint:
            raise RuntimeError(f"variable {vname} missing from checkpoint {prefix}")
        if list(in_checkpoint[vname]) != var.shape.as_list():
            raise RuntimeError(
                f"shape mismatch for {vname}: graph {var.shape.as_list()}, checkpoint {in_checkpoint[vname]}"
            )
    tf.compat.v1.train.Saver(var_list=variables).restore(sess, prefix)
    print(f"restored {len(variables)} variables from {prefix}")


def freeze(sess: tf.compat.v1.Session) -> tf.compat.v1.GraphDef:
    """Return a GraphDef with the weights as constants, pruned to the outputs."""
    output_nodes = [TF_EMBEDDING.split(":")[0], TF_TAGS.split(":")[0]]
    return tf.compat.v1.graph_util.convert_variables_to_constants(sess, sess.graph.as_graph_def(), output_nodes)


def reference_input() -> np.ndarray:
    """Fixed pseudo-random input shaped like real log-mel patches.

    musicnn's log-mel is log10(10000 * S + 1): 0 for silence, a few units for
    loud bins, so uniform values in [0, 4] are in the realistic range.
    """
    rng = np.random.default_rng(REFERENCE_SEED)
    shape = (REFERENCE_BATCH, N_FRAMES, N_MELS)
    return rng.uniform(0.0, 4.0, size=shape).astype(np.float32)


def name_batch_dimension(model: onnx.ModelProto) -> None:
    """Give the dynamic first dimension of inputs and outputs the name 'batch'."""
    for value in list(model.graph.input) + list(model.graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_param = "batch"


def main() -> int:
    tf.compat.v1.disable_eager_execution()
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as sess:
        build_and_restore(sess)

        # Reference outputs come from the original (unfrozen) TF graph.
        x_ref = reference_input()
        emb_tf, tags_tf = sess.run([TF_EMBEDDING, TF_TAGS], feed_dict={TF_INPUT: x_ref})
        frozen = freeze(sess)

    model_proto, _ = tf2onnx.convert.from_graph_def(
        frozen,
        name="msd_musicnn",
        input_names=[TF_INPUT],
        output_names=[TF_EMBEDDING, TF_TAGS],
        opset=OPSET,
        tensors_to_rename=dict(RENAME),
    )
    name_batch_dimension(model_proto)
    model_proto.doc_string = (
        "musicnn MSD_musicnn (musicnn 0.1.0 by Jordi Pons et al., ISC licence), "
        "converted with tf2onnx. Input: log-mel patches [batch, 187, 96]."
    )
    onnx.helper.set_model_props(
        model_proto,
        {
            "source": "PyPI musicnn==0.1.0, musicnn/MSD_musicnn",
            "license": "ISC, see LICENSE-musicnn.txt",
            "tags": json.dumps(TAGS),
        },
    )
    onnx.checker.check_model(model_proto)
    onnx.save(model_proto, ONNX_PATH)
    print(f"wrote {ONNX_PATH} ({os.path.getsize(ONNX_PATH)} bytes)")

    np.savez(
        REFERENCE_PATH,
        input=x_ref,
        embedding=emb_tf.astype(np.float32),
        tags=tags_tf.astype(np.float32),
    )
    print(f"wrote {REFERENCE_PATH}")

    # Parity check: ONNX Runtime against TensorFlow on the reference input.
    session = ort.InferenceSession(ONNX_PATH, providers=["CPUExecutionProvider"])
    print("onnx inputs: ", [(i.name, i.shape) for i in session.get_inputs()])
    print("onnx outputs:", [(o.name, o.shape) for o in session.get_outputs()])
    emb_ort, tags_ort = session.run(["embedding", "tags"], {"melspec": x_ref})
    emb_diff = float(np.max(np.abs(emb_ort - emb_tf)))
    tags_diff = float(np.max(np.abs(tags_ort - tags_tf)))
    print(f"max |TF - ORT|: embedding {emb_diff:.3g}, tags {tags_diff:.3g}")
    if emb_diff > 1e-4 or tags_diff > 1e-4:
        print("parity check FAILED", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
