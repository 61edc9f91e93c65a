"""The Cross-attention lens: ``services`` (the cached pipeline, generation and re-sliced maps), ``controls``
(widgets returning frozen requests), ``state`` (a generation run as a job, the session's result) and ``views``
(figures and the results, re-sliced inside an st.fragment so moving a slider never regenerates).

Here: what every module of the lens shares (session keys, example prompts, citations).
"""

MODEL_KEY = "attention_model_id"
RESULT_KEY = "attention_result"
EXAMPLES: tuple[str, ...] = (
    "a red circle to the left of a blue square",
    "a yellow triangle above a green circle",
    "a blue square below a red triangle",
    "a green circle",
)
CITATION_DAAM = 'Tang et al., "What the DAAM: Interpreting Stable Diffusion Using Cross Attention", ACL 2023'
CITATION_COW = (
    '"The Cow of Rembrandt: Analyzing Artistic Prompt Interpretation in Text-to-Image Models", arXiv 2507.23313'
)
CITATION_CONCEPTS = (
    'Helbling et al., "ConceptAttention: Diffusion Transformers Learn Highly Interpretable Features", ICML 2025'
)
