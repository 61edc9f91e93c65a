"""The eight lessons: each a claim from the literature in two paragraphs, one interactive figure
(:mod:`components.lessons.views`), a question whose answer opens on click, and its citation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from components.lessons import views


@dataclass(frozen=True)
class Lesson:
    key: str
    title: str
    paragraphs: tuple[str, str]
    figure: Callable[[str], None]  # draws controls and figure for a device
    question: str
    answer: str
    citation: str


LESSONS: tuple[Lesson, ...] = (
    Lesson(
        "smoothgrad",
        "A gradient map is noisy; SmoothGrad averages the noise away",
        (
            "The gradient of the class score says how each pixel would change the score, but it jumps from pixel to "
            "pixel: a network's gradient is locally unstable, so the map looks like speckle on top of the object.",
            "SmoothGrad adds Gaussian noise to the image many times and averages the gradients. Raise the number of "
            "samples and watch the speckle fade; raise the noise and the map blurs into the object's shape.",
        ),  # fmt: skip
        views.smoothgrad_figure,
        "With one sample, why is SmoothGrad not simply the gradient?",
        "One noisy copy is the gradient at a different point, just as noisy: the averaging over many copies is what "
        "removes the noise. The noise level sets how far apart those points are.",
        "Smilkov et al., SmoothGrad: removing noise by adding noise, ICML Workshop 2017",
    ),
    Lesson(
        "sanity",
        "Sanity check: randomise the top layers",
        (
            "If a map explains the model, destroying the model should destroy the map. Adebayo et al. re-initialise the "
            "network's layers from the output down and compare each map to the trained model's.",
            "The gradient changes as soon as the top layer is random. Guided Backprop changes later and less: with the "
            "top layers random it still draws the image's edges, and its map comes apart only as the layers near the "
            "input go. Move the slider down the cascade and compare the two curves.",
        ),  # fmt: skip
        views.sanity_figure,
        "Guided Backprop's maps look sharp and convincing. What does the check say about them?",
        "That they are not about the model's decision: they survive randomising the layers that make the decision. "
        "A sharp map can be an edge detector, not an explanation.",
        "Adebayo et al., Sanity Checks for Saliency Maps, NeurIPS 2018",
    ),
    Lesson(
        "robust",
        "Standard vs robust models on BlockDigits: where is the evidence?",
        (
            "Each BlockDigits image stacks a digit over a fixed null patch that carries no information, so the right "
            "answer to 'where is the evidence' is known: on the digit.",
            "The standard model's input gradients put much of their mass on the null patch (feature leakage); the "
            "adversarially trained model's gradients stay on the digit. Try the methods on both models.",
        ),  # fmt: skip
        views.robust_figure,
        "Why can a standard model's gradient light up the null patch although the patch never changes?",
        "The gradient measures sensitivity, not use: a standard model can react strongly to changes in a region it "
        "never needed. Adversarial training makes the model insensitive to such directions.",
        "Shah, Jain & Netrapalli, Do Input Gradients Highlight Discriminative Features?, NeurIPS 2021",
    ),
    Lesson(
        "cams",
        "Grad-CAM is coarse; HiResCAM and NormGrad are sharper; class sensitivity tells them apart",
        (
            "Class activation maps weight a late layer's channels by the class's gradient. Grad-CAM averages the "
            "gradient over space first, so its map can look alike for very different classes.",
            "HiResCAM multiplies gradient and activation element by element; NormGrad takes norms of their outer "
            "product. Compare each method's map for the top class and the least likely class: the lower ρ, the more "
            "the map depends on the class.",
        ),  # fmt: skip
        views.cam_figure,
        "A method gives nearly the same map for 'Egyptian cat' and for the least likely class. What is it showing?",
        "What the image contains, not why the model chose a class: a class-insensitive map cannot explain a "
        "decision between classes.",
        "Draelos & Carin (HiResCAM) 2020; Rebuffi et al. (NormGrad), CVPR 2020; Rao et al. (class sensitivity), 2022",
    ),
    Lesson(
        "complexity",
        "What makes a picture look complex: MSG vs MUC",
        (
            "MSG measures structure (the Sobel gradients at four scales); MUC counts distinct colours after quantising "
            "each channel to a few bits. Both come from cheap pixel statistics.",
            "Against human ratings of complexity they behave differently per data set: structure carries scenes, "
            "colour carries art. The scatter plots use the paper's own tables.",
        ),  # fmt: skip
        views.complexity_figure,
        "Which bit depth makes MUC most predictive, and why not 8 bits?",
        "A middle depth (about 4): at 8 bits nearly every pixel is a distinct colour (noise and gradients count), "
        "at 1–2 bits the count saturates.",
        "Sarıtaş, Dayan, Shen & Nath, Complexity in Complexity, arXiv:2501.15890 (2025)",
    ),
    Lesson(
        "red",
        "What does the word “red” look at? Cross-attention over the denoising steps",
        (
            "A text-to-image model reads the prompt through cross-attention: each image position attends to the words. "
            "DAAM sums these maps over layers and steps into one map per word.",
            "Step through the denoising: early steps attend diffusely, the layout settles within the first few steps, "
            "and the colour word's map lands on the object it colours.",
        ),  # fmt: skip
        views.red_figure,
        "Why does the attention of “red” settle early?",
        "The layout (where objects go) is decided at high noise, in the first steps; later steps refine texture and "
        "edges, where the text matters less.",
        "Tang et al., What the DAAM: Interpreting Stable Diffusion Using Cross Attention, ACL 2023",
    ),
    Lesson(
        "style",
        "Content vs style: do the object word and the colour word look at different places?",
        (
            "“red” is a property (style) and “circle” an object (content). If the model binds them, both words "
            "should attend to the same region.",
            "Compare their maps and the overlap of their strongest regions for each object of the prompt.",
        ),  # fmt: skip
        views.style_figure,
        "The colour and shape maps overlap strongly. Does that prove the model binds colour to shape?",
        "It is consistent with binding but not proof: attention shows where a word is read, not how it is used. The "
        "diffusion classifier (last lesson) tests the behaviour itself.",
        "Tang et al., ACL 2023; Rassin et al., Linguistic Binding in Diffusion Models, NeurIPS 2023",
    ),
    Lesson(
        "relations",
        "Does the diffusion model know left from right?",
        (
            "A text-to-image model can classify: the caption under which it denoises the image best wins. Ask it about "
            "a drawn scene under the true caption, the caption with the objects swapped and one with the relation "
            "changed.",
            "If it prefers the true caption over the swapped one, it uses word order and the relation, not only a bag "
            "of words.",
        ),  # fmt: skip
        views.relation_figure,
        "The swapped caption has the same words as the true one. What would a bag-of-words model do?",
        "Give both the same score: only a model that reads the relation and which object it applies to can prefer "
        "the true caption.",
        'Li et al., "Your Diffusion Model is Secretly a Zero-Shot Classifier", ICCV 2023',
    ),
)
KEYS = tuple(lesson.key for lesson in LESSONS)
