"""The Cross-attention page offers the embedded MMDiT: its button loads shapes-mmdit and the page traces it."""

import pytest

from components import attention
from components.attention import controls
from models.diffusion import EMBEDDED_MMDIT
from tests.apptest_support import generate, open_page, stored


@pytest.mark.slow  # about 20 s on a shared 2-core CPU: the app, two models' loads, a generation
def test_the_embedded_mmdit_is_offered_and_its_joint_attention_is_traced():
    at = open_page("app_pages/attention.py")
    next(b for b in at.button if b.label.startswith("The embedded MMDiT")).click()
    at.run()
    assert not at.exception, at.exception
    assert at.session_state[controls.MODEL_KEY] == EMBEDDED_MMDIT
    generate(at, "a red circle to the left of a blue square", steps=3)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    request, result = stored(at, attention.RESULT_KEY)
    assert result.trace.model_id == EMBEDDED_MMDIT and len(result.trace.timesteps) == 3
    assert result.image.shape == (32, 32, 3)
