"""The winning prompt's cross-attention over the classified image, and hard negatives and templates."""

from __future__ import annotations

import numpy as np
import pytest

from glimpse.diffusion_classifier.negatives import expand_template, hard_negatives, parse


def test_each_object_word_attends_to_its_own_object():
    from glimpse.attention import word_maps
    from glimpse.diffusion_classifier.attention import trace_prompt
    from glimpse.evaluation.shapes_scenes import HELD_OUT_SPECS, render_scene
    from models.diffusion import load_pipeline

    bundle = load_pipeline("shapes-t2i", device="cpu")
    spec = HELD_OUT_SPECS[2]
    scene = render_scene(spec, np.random.default_rng(0))
    trace = trace_prompt(bundle, scene.image, spec.text, samples=6)
    assert trace.steps == 6 and list(trace.timesteps) == [83, 249, 415, 581, 747, 913]
    maps = word_maps(trace)
    words = list(trace.words)
    first, second = words.index(spec.objects[0].colour), len(words) - 2  # the two colour words
    for w, own, other in ((first, 0, 1), (second, 1, 0)):
        assert maps[w][scene.masks[own]].mean() > 3 * maps[w][scene.masks[other]].mean()
    with pytest.raises(ValueError, match="not on the classifier's grid"):
        trace_prompt(bundle, scene.image, spec.text, samples=6, timesteps=[500])


def test_the_tracer_checks_of_a_generation_hold_for_the_classifier():
    """trace_prompt is trace_denoiser's other caller: no layer recorded, or a call count that is not one per
    timestep, is an error there too."""
    from glimpse.diffusion_classifier.attention import trace_prompt
    from models.diffusion import load_pipeline
    from tests.glimpse.attention.tracefixture import runs_twice

    bundle = load_pipeline("shapes-t2i", device="cpu")
    image = np.full((32, 32, 3), 255, np.uint8)
    with pytest.raises(ValueError, match=r"resolutions: \[5\] match no cross-attention layer; this model has \["):
        trace_prompt(bundle, image, "a red circle", samples=2, resolutions=[5])
    with runs_twice(bundle.pipe.unet), pytest.raises(RuntimeError, match="4 denoiser calls recorded for 2 steps"):
        trace_prompt(bundle, image, "a red circle", samples=2)
    with pytest.raises(ValueError, match="layers: unknown .most."):
        trace_prompt(bundle, image, "a red circle", samples=2, layers="most")
    with pytest.raises(ValueError, match="timesteps: none chosen"):
        trace_prompt(bundle, image, "a red circle", samples=2, timesteps=[])
    trace = trace_prompt(bundle, image, "a red circle", samples=2, resolutions=[8])
    assert trace.resolutions() == (8,) and trace.steps == 2 and trace.guidance == 0.0


def test_hard_negatives_cover_one_and_two_objects_and_skip_other_prompts():
    kinds = [k for k, _ in hard_negatives("a red circle above a blue square")]
    assert kinds == ["colours swapped", "shapes swapped", "relation flipped", "object dropped", "object dropped"]
    single = hard_negatives("A green triangle.")
    assert ("colour changed", "a red triangle") in single and ("shape changed", "a green circle") in single
    assert len(single) == 5 and all(text != "a green triangle" for _, text in single)
    assert hard_negatives("a photo of a dog") == [] and parse("a dog") is None
    # same colour twice: swapping colours gives the prompt itself, so it is left out
    assert [k for k, _ in hard_negatives("a red circle to the left of a red square")][0] == "shapes swapped"


def test_templates_expand_their_slots_and_refuse_others():
    assert expand_template("a {shape}", shapes=("cube", "cone")) == ["a cube", "a cone"]
    with pytest.raises(ValueError, match="slots"):
        expand_template("a {animal}")
    with pytest.raises(ValueError, match="slots"):
        expand_template("no slot at all")
