"""How prompts map to text tokens for hub tokenizers (CLIP BPE, T5 sentencepiece), built in code."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from glimpse.attention import prompt_tokens
from glimpse.attention.generate import word_spans
from tests.tiny_models import tiny_clip_tokenizer


def tiny_t5_tokenizer():
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁a", -1.0), ("▁red", -1.0), ("▁d", -2.5), ("▁", -2.0)]
    pieces += [(c, -3.0) for c in "abcdefghijklmnopqrstuvwxyz"]
    return T5Tokenizer(vocab=pieces, extra_ids=0)


def stub(kind: str, max_tokens: int, **tokenizers):
    return SimpleNamespace(kind=kind, max_tokens=max_tokens, pipe=SimpleNamespace(**tokenizers))


def test_t5_words_group_sentencepiece_pieces_and_keep_eos():
    got = prompt_tokens(stub("pixart", 120, tokenizer=tiny_t5_tokenizer()), "a red  dog")
    assert got.tokens == ("▁a", "▁red", "▁d", "o", "g", "</s>")
    assert got.words == ("a", "red", "dog") and got.word_tokens == ((0,), (1,), (2, 3, 4))
    assert got.positions == tuple(range(6)) and got.text_len is None


def test_flux_uses_the_t5_tokenizer_and_its_full_sequence_length():
    got = prompt_tokens(stub("flux", 512, tokenizer=tiny_clip_tokenizer(), tokenizer_2=tiny_t5_tokenizer()), "a dog")
    assert got.tokens[0] == "▁a" and got.text_len == 512


def test_sd3_uses_the_clip_tokens_with_start_and_end():
    got = prompt_tokens(stub("sd3", 12, tokenizer=tiny_clip_tokenizer()), "red dog")
    assert got.tokens[0] == "<|startoftext|>" and got.tokens[-1] == "<|endoftext|>"
    assert got.word_tokens == ((1,), (2, 3, 4))


def test_limits_are_stated():
    with pytest.raises(ValueError, match="at most 6"):
        prompt_tokens(stub("pixart", 6, tokenizer=tiny_t5_tokenizer()), "a red dog dog")
    with pytest.raises(ValueError, match="empty"):
        prompt_tokens(stub("pixart", 6, tokenizer=tiny_t5_tokenizer()), "")


def test_punctuation_at_a_word_edge_is_not_part_of_the_word():
    got = prompt_tokens(stub("sd3", 12, tokenizer=tiny_clip_tokenizer()), "red dog.")
    assert got.words == ("red", "dog")
    dot = got.tokens.index(".</w>") if ".</w>" in got.tokens else got.tokens.index(".")
    assert all(dot not in members for members in got.word_tokens)  # the full stop's token belongs to no word


def test_word_spans():
    assert [w for *_, w in word_spans("“A red circle,” she said... ok?")] == ["A", "red", "circle", "she", "said", "ok"]
    assert word_spans("...") == [(0, 3, "...")]  # punctuation alone stays a word


def test_the_embedded_model_accepts_a_full_stop():
    from models.diffusion import load_pipeline

    bundle = load_pipeline("shapes-t2i", device="cpu")
    got = prompt_tokens(bundle, "A red circle.")
    assert got.words == ("a", "red", "circle") and got.tokens[:5] == ("[CLS]", "a", "red", "circle", "[SEP]")
    with pytest.raises(ValueError, match="unknown words"):
        prompt_tokens(bundle, "a red circle!?x")
