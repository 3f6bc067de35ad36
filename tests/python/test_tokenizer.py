"""`hilo tokenize` (byte-level BPE from tokenizer.json) against the `tokenizers` package: GPT-2 style (ByteLevel
regex) and Llama-3 style (Split regex + ByteLevel) tokenizers trained here on random text, the fixture's tokenizer
on its own corpus, special tokens, Unicode, and refusals."""
import json
import random
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file
from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

from conftest import ROOT, run

FIXTURE = ROOT.parent / "shared" / "fixtures" / "tinylm"
LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")
WORDS = ["the", "quantized", "model's", "we'll", "I'D", "naïve", "façade", "Ünïcödé", "東京", "данные", "123456",
         "3.14159", "x=y+z;", "--flag", "😀", "e\u0301", "\u00a0nbsp", "tab\tbed", "a\r\nb", "  ", "\n\n"]


def random_text(rng, n):
    return "".join(rng.choice(WORDS) + rng.choice([" ", "  ", "", "\n", ", "]) for _ in range(n))


def train(path, style, rng):
    tok = Tokenizer(models.BPE())
    if style == "gpt2":
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    trainer = trainers.BpeTrainer(vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|end|>", "<|begin_of_text|>"], show_progress=False)
    tok.train_from_iterator([random_text(rng, 50) for _ in range(200)], trainer)
    path.mkdir()
    tok.save(str(path / "tokenizer.json"))
    return tok


def hilo_tokenize(hilo_bin, model_dir, text, tmp_path):
    (tmp_path / "in.txt").write_bytes(text.encode() if isinstance(text, str) else text)
    run(hilo_bin, "tokenize", model_dir, "--text", tmp_path / "in.txt", "-o", tmp_path / "out.safetensors")
    return load_file(str(tmp_path / "out.safetensors"))["tokens"].tolist()


@pytest.mark.parametrize("style", ["gpt2", "llama3"])
def test_matches_the_tokenizers_package(hilo_bin, tmp_path, style):
    rng = random.Random(7)
    tok = train(tmp_path / "m", style, rng)
    for i in range(3):
        text = random_text(rng, 300) + "<|end|>" + random_text(rng, 20) + "<|begin_of_text|><|end|>"
        assert hilo_tokenize(hilo_bin, tmp_path / "m", text, tmp_path) == tok.encode(text).ids, f"text {i}"


@pytest.mark.heavy
@pytest.mark.skipif(not (FIXTURE / "tokenizer.json").exists(), reason="no fixture")
def test_fixture_tokenizer_and_perplexity_from_text(hilo_bin, tmp_path):
    tok = Tokenizer.from_file(str(FIXTURE / "tokenizer.json"))
    ids = load_file(str(FIXTURE / "validation_tokens.safetensors"))["tokens"][:30000].tolist()
    text = tok.decode(ids, skip_special_tokens=False)
    mine = hilo_tokenize(hilo_bin, FIXTURE, text, tmp_path)
    assert mine == tok.encode(text).ids
    by_text = json.loads(run(hilo_bin, "perplexity", FIXTURE, "--text", tmp_path / "in.txt", "--max-windows", "2",
                             "--json").stdout)
    by_ids = json.loads(run(hilo_bin, "perplexity", FIXTURE, "--tokens", tmp_path / "out.safetensors",
                            "--max-windows", "2", "--json").stdout)
    assert by_text["ppl"] == by_ids["ppl"]


def test_refusals(hilo_bin, tmp_path):
    tok = train(tmp_path / "m", "gpt2", random.Random(1))
    r = run(hilo_bin, "tokenize", tmp_path / "m", "--text", tmp_path / "missing.txt", "-o", tmp_path / "o", check=False)
    assert r.returncode != 0
    (tmp_path / "bad.txt").write_bytes(b"abc\xff\xfedef")
    r = run(hilo_bin, "tokenize", tmp_path / "m", "--text", tmp_path / "bad.txt", "-o", tmp_path / "o.st", check=False)
    assert r.returncode == 1 and "not valid UTF-8 at byte 3" in r.stderr
    assert not (tmp_path / "o.st").exists()
    spec = json.loads((tmp_path / "m" / "tokenizer.json").read_text())
    spec["normalizer"] = {"type": "NFC"}
    (tmp_path / "m" / "tokenizer.json").write_text(json.dumps(spec))
    (tmp_path / "ok.txt").write_text("hello")
    r = run(hilo_bin, "tokenize", tmp_path / "m", "--text", tmp_path / "ok.txt", "-o", tmp_path / "o.st", check=False)
    assert r.returncode == 1 and "normalizer" in r.stderr
    r = run(hilo_bin, "perplexity", tmp_path / "m", "--text", tmp_path / "ok.txt", "--tokens", tmp_path / "ok.txt",
            check=False)
    assert r.returncode != 0 and "excludes" in (r.stderr + r.stdout)
