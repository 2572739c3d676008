from __future__ import annotations

import torch

from ragortune.tune.packing import IGNORE, epoch_batches, epoch_order, pack
from ragortune.tune.tokens import EncodedChat


def ex(ids, n_prompt):
    return EncodedChat(list(ids), [IGNORE] * n_prompt + list(ids[n_prompt:]), False)


def test_data_order_is_a_function_of_seed_and_epoch():
    assert epoch_order(100, seed=1, epoch=3) == epoch_order(100, seed=1, epoch=3)
    assert epoch_order(100, seed=1, epoch=3) != epoch_order(100, seed=1, epoch=4)
    assert sorted(epoch_order(100, seed=1, epoch=3)) == list(range(100))


def test_every_process_gets_the_same_number_of_batches():
    shards = [epoch_batches(10, 3, seed=0, epoch=0, rank=r, world=3) for r in range(3)]
    assert [len(s) for s in shards] == [2, 2, 2]
    assert {i for s in shards for b in s for i in b} == set(range(10))


def test_packed_examples_restart_positions_and_never_predict_across_the_boundary():
    a, b = ex([5, 6, 7, 8], 2), ex([9, 10, 11], 1)
    batch = pack([a, b], [0, 1], max_len=64, pad_id=0, pad_multiple=8)
    assert batch.input_ids.shape == (1, 8)
    assert batch.position_ids[0].tolist() == [0, 1, 2, 3, 0, 1, 2, 0]
    assert batch.labels[0].tolist() == [IGNORE, IGNORE, 7, 8, IGNORE, 10, 11, IGNORE]
    assert batch.n_tokens == 7 and batch.n_targets == 4


def test_rows_never_exceed_max_len():
    batch = pack([ex(range(1, 7), 1)] * 3, [0, 1, 2], max_len=12, pad_id=0, pad_multiple=1)
    assert batch.input_ids.shape == (2, 12)


def test_packing_does_not_change_an_examples_loss(tiny_model_dir, smol_tokenizer):
    """Examples packed into one row must not see each other: each keeps the loss it has alone."""
    from transformers import AutoModelForCausalLM

    from ragortune.tune.tokens import encode_chat
    from ragortune.tune.train_steps import forward

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    chats = [[{"role": "user", "content": f"Question {i}?"}, {"role": "assistant", "content": f"Answer {i} " * (i + 1)}]
             for i in range(3)]
    encoded = [encode_chat(smol_tokenizer, c, max_tokens=None) for c in chats]

    def loss(batch):
        logits, targets = forward(model, batch, torch.device("cpu"))
        return torch.nn.functional.cross_entropy(logits, targets, reduction="sum").item()

    with torch.no_grad():
        alone = sum(loss(pack([e], [i], max_len=512, pad_id=0)) for i, e in enumerate(encoded))
        packed = loss(pack(encoded, [0, 1, 2], max_len=512, pad_id=0))
    # (with one position sequence for the row the difference here is ~2e-4 relative)
    assert abs(alone - packed) < 1e-5 * abs(alone)
