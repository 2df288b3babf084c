"""Three students' answers to the pilot notebook (part2_fundamentals/attention), bundled so
that ``make demo`` can autograde a small class: one complete, one with two classic mistakes,
one that stopped halfway. Each maps a solution cell's grade_id to the student's code;
``None`` means "the source solution" and a missing id leaves the release stub."""

SAMPLE_ANSWERS: dict[str, dict[str, str | None]] = {
    "ada": {"sdpa": None, "causal": None, "mha": None},
    "ben": {
        # forgot the 1/sqrt(d) scaling
        "sdpa": """
def scaled_dot_product_attention(q, k, v, attn_mask=None, is_causal=False):
    scores = q @ k.transpose(-2, -1)
    if is_causal:
        t, s = scores.shape[-2:]
        allowed = torch.ones(t, s, dtype=torch.bool).tril(s - t)
        scores = scores.masked_fill(~allowed, float("-inf"))
    if attn_mask is not None:
        scores = scores.masked_fill(~attn_mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v
""",
        # the mask leaves out the diagonal: a token cannot see itself
        "causal": """
def causal_mask(t):
    return torch.ones(t, t, dtype=torch.bool).tril(-1)
""",
        "mha": None,
    },
    "cleo": {"sdpa": None},  # stopped after the first exercise
}
