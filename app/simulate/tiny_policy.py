"""A tiny policy for the CPU demo: a 2-layer GPT-2 warmed up on templated answers.

SmolLM2-135M samples at about 2 tokens/s on a busy 2-core CPU (measured: 181 s for 8 samples of
48 tokens), too slow for a loop of several iterations "in minutes". The demo's policy is built
instead: a word-level tokenizer over the simulated worlds' prompt and answer vocabulary
(app/simulate/texts.py) and a small GPT-2, trained for a few hundred steps to write answers like
the templates do, of varied lengths, half of them with a polite closer. Its samples then vary
the way a gold reward looks at them (length, politeness), which is what a loop can improve.
Everything is seeded: the same seed builds the same weights on one machine.

Worker-side: torch, tokenizers and transformers are imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from app.simulate.draws import Draws
from app.simulate.rewards import POLITENESS_MARKERS
from app.simulate.texts import (
    CLOSERS,
    CONSTRAINTS,
    OPENERS,
    PROMPT_FORMS,
    SENTENCES,
    TASKS,
    prompt_for,
    response_text,
)

# An assistant turn ends with the EOS token, as chat templates end a turn with their end-of-turn
# token: TRL adds no EOS to conversational SFT targets, so without it expert iteration would
# train the policy to end answers with a newline, never to stop (and every sample ran to
# max_new_tokens, past the gold reward's length target, whatever the reward model preferred).
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}"
    "{{ eos_token if m['role'] == 'assistant' else '' }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)
# Words the gold rewards look for that the templates rarely use: the policy can say them.
EXTRA_WORDS = "thank you please you're welcome glad to help obviously stupid whatever google it"


def vocabulary_texts() -> list[str]:
    """Every text the tokenizer learns its words from."""
    texts = [*OPENERS, *SENTENCES, *CLOSERS, *CONSTRAINTS, *POLITENESS_MARKERS, EXTRA_WORDS]
    for tasks in TASKS.values():
        for task, name in tasks:
            texts += [task, name]
    for forms in PROMPT_FORMS.values():
        texts += list(forms)
    return [*texts, "user: assistant:"]


def demo_prompts(count: int, seed: int, *, offset: int = 0) -> list[str]:
    """`count` prompts of the simulated worlds (everyday tasks, easy and moderate wording)."""
    out = []
    for i in range(offset, offset + count):
        draws = Draws(seed, "demo-prompt", i)
        complexity = "easy" if draws.chance(0.5) else "moderate"
        prompt, _ = prompt_for(draws, "none" if draws.chance(0.7) else "mild", complexity)
        out.append(prompt)
    return out


def warmup_examples(count: int, seed: int) -> list[tuple[str, str]]:
    """(prompt, answer) pairs written by the templates, 8 to 90 words long."""
    out = []
    for i in range(count):
        draws = Draws(seed, "demo-warmup", i)
        prompt, name = prompt_for(draws, "none" if draws.chance(0.7) else "mild", "easy")
        target = 8 + draws.index(83)
        out.append((prompt, response_text(draws, name, target)))
    return out


def build_tiny_policy(
    folder: Path,
    *,
    seed: int = 0,
    examples: int = 400,
    epochs: int = 2,
    n_embd: int = 64,
    learning_rate: float = 3e-3,
) -> dict[str, Any]:
    """Write the demo policy (config.json, safetensors, tokenizer) to `folder`; returns what
    it was trained on and how long it took. A folder that holds one already is kept."""
    import time

    import torch

    started = time.perf_counter()
    if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
        return {"reused": True, "seconds": 0.0}
    tok, model = random_gpt2(vocabulary_texts(), CHAT_TEMPLATE, n_embd=n_embd, seed=seed)
    pairs = warmup_examples(examples, seed)
    rows = []
    for prompt, answer in pairs:
        ids = tok.apply_chat_template(
            [{"role": "user", "content": prompt}],
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
        )["input_ids"]
        target = tok(answer)["input_ids"] + [tok.eos_token_id]
        rows.append((list(ids), target))
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate)
    generator = torch.Generator().manual_seed(seed)
    batch, losses = 16, []
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(rows), generator=generator).tolist()
        for start in range(0, len(order), batch):
            chunk = [rows[i] for i in order[start : start + batch]]
            width = max(len(p) + len(t) for p, t in chunk)
            ids = torch.full((len(chunk), width), int(tok.pad_token_id))
            labels = torch.full((len(chunk), width), -100)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for r, (p, t) in enumerate(chunk):
                seq = p + t
                ids[r, : len(seq)] = torch.tensor(seq)
                labels[r, len(p) : len(seq)] = torch.tensor(t)  # loss on the answer only
                mask[r, : len(seq)] = 1
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    model.eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return {
        "reused": False,
        "examples": len(rows),
        "epochs": epochs,
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "seconds": time.perf_counter() - started,
    }


def word_tokenizer(texts: Iterable[str], chat_template: str) -> Any:
    """A word-level tokenizer trained on `texts`, with [UNK], [PAD], [EOS] and the chat
    template."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    raw.train_from_iterator(
        texts, trainers.WordLevelTrainer(special_tokens=["[UNK]", "[PAD]", "[EOS]"])
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=raw, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]"
    )
    tok.chat_template = chat_template
    return tok


def random_gpt2(texts: Iterable[str], chat_template: str, *, n_embd: int, seed: int) -> Any:
    """A word_tokenizer over `texts` and a random-init 2-layer GPT-2 over it: (tokenizer,
    model). The demo's policy and the tests' tiny models start here."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = word_tokenizer(texts, chat_template)
    config = GPT2Config(
        vocab_size=len(tok),
        n_embd=n_embd,
        n_layer=2,
        n_head=2,
        n_positions=256,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(seed)
    return tok, GPT2LMHeadModel(config)
