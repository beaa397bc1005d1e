"""The sentences a model's process writes (English: it never sets a language), kept here
so that the window's process knows them and reads them in its own language
(:func:`localize`); llama.cpp's own words, quoted in a figure, stay as they came."""

from __future__ import annotations

from desktop_app.models import gguf
from desktop_app.models.catalog import MISSING_SENTENCES
from desktop_app.models.wording import localize as _localize
from desktop_app.text.i18n import N_

# loading
PREPARING = N_("preparing the model file")
LOADING_FILE = N_("loading {file}")
# the load failed
NO_MEMORY_TO_LOAD = N_("Not enough memory to load {model}.")
DAMAGED_FILE = N_("llama.cpp could not load {file}: the file is damaged or not a model it "
                  "can read.")
NO_CONTEXT = N_("llama.cpp could not create a context of {n_ctx} tokens for {file} (not "
                "enough memory?).")
BAD_VOCABULARY = N_("llama.cpp could not read the vocabulary of {file}: the file is damaged "
                    "or not a model it can read.")
TEST_BATCH = N_("llama.cpp could not evaluate a test batch (code {code}).")
# a generation failed
PROMPT_TOO_LONG = N_("The prompt is {tokens} tokens, more than {model}'s context of {n_ctx}; "
                     "shorten it or clear the conversation.")
TOO_MANY_SEQUENCES = N_("Between 1 and {most} sequences can be sampled at once.")
TOO_MANY_RUNNING = N_("Between 1 and {most} sequences can run at once.")
OOM_GENERATING = N_("{model} ran out of memory while generating.")
GENERATION_FAILED = N_("Generation failed: {error}")
OOM_EMBEDDING = N_("{model} ran out of memory while embedding.")
CANNOT_EMBED = N_("{model} could not embed: {error}")
NO_LOGITS = N_("llama.cpp returned no logits for this output.")
PROMPT_EVALUATION = N_("llama.cpp could not evaluate the prompt (code {code}).")
DECODE_FAILED = N_("llama.cpp failed while generating (code {code}).")
NOT_TOKENIZED = N_("The prompt could not be tokenized.")
# the prompt
TEMPLATE_REFUSED = N_("The model's chat template refused the conversation: {error}")
TEMPLATE_BROKEN = N_("The model's chat template could not be rendered: {error}")
BAD_EFFORT = N_("Reasoning effort must be low, medium or high, not '{effort}'.")
NO_QUESTION = N_("The document wrapping must contain {question}.")

SENTENCES: tuple[str, ...] = (
    PREPARING, LOADING_FILE, NO_MEMORY_TO_LOAD, DAMAGED_FILE, NO_CONTEXT, BAD_VOCABULARY,
    TEST_BATCH, PROMPT_TOO_LONG, TOO_MANY_SEQUENCES, TOO_MANY_RUNNING, OOM_GENERATING,
    GENERATION_FAILED, OOM_EMBEDDING, CANNOT_EMBED, NO_LOGITS, PROMPT_EVALUATION,
    DECODE_FAILED, NOT_TOKENIZED, TEMPLATE_REFUSED, TEMPLATE_BROKEN, BAD_EFFORT,
    NO_QUESTION, *gguf.SENTENCES, *MISSING_SENTENCES)


def localize(text: str) -> str:
    """A sentence of the model's process in the current language (unknown: unchanged)."""
    return _localize(text, SENTENCES)
