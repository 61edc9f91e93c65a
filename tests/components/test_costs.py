"""The cost lines' timings: a denoising step timed on this machine is a real, positive time (the screenshot of the
Cross-attention page once said "0 ms a step": the first call's set-up was timed as the 1-step run)."""

from __future__ import annotations

from components.costs import denoising_step


def test_a_denoising_step_of_the_embedded_model_costs_time():
    denoising_step.clear()
    fixed, per = denoising_step("shapes-t2i", "cpu", "a red circle", 1.5)
    assert per > 1e-4 and fixed >= 0.0  # a step of the 4.8 M-parameter UNet takes milliseconds, not zero
