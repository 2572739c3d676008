import numpy as np


def test_vectors_come_back_in_the_callers_order_when_batched_by_length(embedder):
    """The embedder regroups texts by token length; each caller still gets its own row."""
    texts = [("word " * n).strip() + f" number {n}" for n in (3, 40, 1, 90, 7, 60, 2, 25)] * 5
    batched = embedder.embed(texts)
    one_by_one = np.stack([embedder.embed([text])[0] for text in texts[:8]])
    assert batched.shape == (len(texts), embedder.dimension) and batched.dtype == np.float32
    np.testing.assert_allclose(batched[:8], one_by_one, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
