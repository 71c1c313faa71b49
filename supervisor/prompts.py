"""Few-shot, step-per-turn chat prompts: the generic profile per task family here, the
reference profile (per dataset, from the datasets' splits) in profiles.py.

As in the reference code, every reasoning step is its own assistant turn, so
the agent learns to write one sentence per turn and the loop can cut steps on
turn boundaries.
"""

from __future__ import annotations

from collections.abc import Sequence

from rationalyst import protocol
from rationalyst.protocol import pick_task  # noqa: F401 (re-exported)

from . import profiles
from .types import Problem

ANSWER_PHRASE = "The answer is:"

_STEP_RULE = (
    "Write only one sentence that extends the reasoning trajectory. "
    "When you are ready, give the final answer as "
)

_SYSTEM = {
    "math": (
        "You solve grade-school math word problems step by step. "
        + _STEP_RULE
        + f"'{ANSWER_PHRASE} <number>'."
    ),
    "math_boxed": (
        "You are a smart assistant that solves math problems step by step. "
        + _STEP_RULE
        + "\\boxed{<answer>}."
    ),
    "multiple_choice": (
        "Think step by step and analyse the answer choices. "
        + _STEP_RULE
        + f"'{ANSWER_PHRASE} <letter>'."
    ),
    "true_false": (
        "Decide from the facts and rules whether the statement is True, False "
        "or Unknown, step by step. " + _STEP_RULE + f"'{ANSWER_PHRASE} True', 'False' or 'Unknown'."
    ),
}

# (question, choices, steps): short on purpose, every token is prefilled per step.
_SHOTS: dict[str, list[tuple[str, list[str] | None, list[str]]]] = {
    "math": [
        (
            "Natalia sold clips to 48 of her friends in April, and then she sold half as "
            "many clips in May. How many clips did Natalia sell altogether in April and May?",
            None,
            [
                "In May Natalia sold 48 / 2 = 24 clips.",
                "Altogether she sold 48 + 24 = 72 clips.",
                f"{ANSWER_PHRASE} 72",
            ],
        ),
        (
            "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of "
            "babysitting. How much did she earn?",
            None,
            [
                "Weng earns 12 / 60 = $0.2 per minute.",
                "For 50 minutes she earned 0.2 x 50 = $10.",
                f"{ANSWER_PHRASE} 10",
            ],
        ),
    ],
    "math_boxed": [
        (
            "What is the value of $\\sqrt{36 \\times \\sqrt{16}}$?",
            None,
            [
                "First, $\\sqrt{16} = 4$.",
                "Then $36 \\times 4 = 144$ and $\\sqrt{144} = 12$.",
                "So the value is $\\boxed{12}$.",
            ],
        ),
        (
            "Solve for $x$: $2x + 3 = 11$.",
            None,
            [
                "Subtracting 3 from both sides gives $2x = 8$.",
                "Dividing by 2 gives $x = \\boxed{4}$.",
            ],
        ),
    ],
    "multiple_choice": [
        (
            "Which of the following statements best explains why magnets usually stick to "
            "a refrigerator door?",
            [
                "The refrigerator door is smooth.",
                "The refrigerator door contains iron.",
                "The refrigerator door is a good conductor.",
                "The refrigerator door has electric wires in it.",
            ],
            [
                "Smoothness does not affect magnetism, so A is unlikely.",
                "Magnets stick to iron, so B fits.",
                "Conductivity is not related to magnetism, so C is wrong.",
                "Electric wires do not make magnets stick, so D is wrong.",
                f"{ANSWER_PHRASE} B",
            ],
        ),
        (
            "Which material will spread out to completely fill a larger container?",
            ["air", "ice", "sand", "water"],
            [
                "A gas such as air spreads out to fill any container.",
                "Ice, sand and water keep their volume and do not fill it.",
                f"{ANSWER_PHRASE} A",
            ],
        ),
    ],
    "true_false": [
        (
            "Facts: The cat is blue. If something is blue then it is cold.\n"
            "Statement: The cat is cold.",
            None,
            [
                "The cat is blue.",
                "Blue things are cold, so the cat is cold.",
                f"{ANSWER_PHRASE} True",
            ],
        ),
        (
            "Facts: Bob is big. Big people are not kind.\nStatement: Bob is round.",
            None,
            ["Nothing in the facts says whether Bob is round.", f"{ANSWER_PHRASE} Unknown"],
        ),
    ],
}

TASKS = tuple(_SYSTEM)
if set(TASKS) != set(protocol.TASKS):
    raise ImportError("a task needs its name in rationalyst.protocol.TASKS and a prompt here")

RATIONALE_SCORER_SYSTEM = (
    "Your task is to generate future text given preceding text and the rationale that "
    "guides future reasoning. The rationales start with 'Rationale: '. Write text "
    "that agrees with the rationales and with the text that comes before."
)

EXPLICIT_NOTE = (
    " If you find text enclosed in <BOT> and <EOT>, that is a rationale "
    "that may or may not help you with the next step."
)


question_text = profiles.question_text


def user_turn(problem: Problem) -> str:
    """The problem's own user turn under its profile ('Question: q\n[Choices: ...\n]Answer:')."""
    if problem.profile == "reference":
        return profiles.reference_user(problem)
    return question_text(problem.question, problem.choices)


def layout(problem: Problem) -> profiles.Prompt:
    """The agent prompt's parts under the problem's profile."""
    if problem.profile == "reference":
        return profiles.reference_prompt(problem)
    shots = tuple((question_text(q, c), tuple(s)) for q, c, s in _SHOTS[problem.task])
    return profiles.Prompt(_SYSTEM[problem.task], shots, user_turn(problem))


def _history(prompt: profiles.Prompt, steps: Sequence[str]) -> list[dict]:
    msgs: list[dict] = []
    for user, shot_steps in prompt.shots:
        msgs.append({"role": "user", "content": user})
        msgs.extend({"role": "assistant", "content": s} for s in shot_steps)
    msgs.append({"role": "user", "content": prompt.user})
    msgs.extend({"role": "assistant", "content": s} for s in steps)
    return msgs


def agent_messages(
    problem: Problem, steps: Sequence[str], rationale: str | None = None
) -> list[dict]:
    """The agent's prompt; with a rationale, the explicit-supervision variant."""
    prompt = layout(problem)
    system = prompt.system or ""
    if problem.system:
        system = problem.system.strip() + ("\n\n" + system if system else "")
    msgs = _history(prompt, steps)
    if rationale is not None:
        system = system + EXPLICIT_NOTE if system else EXPLICIT_NOTE.strip()
        last = dict(msgs[-1])
        last["content"] += f" <BOT>{rationale}<EOT>"
        msgs[-1] = last
    # No system turn when the profile has none (the reference's GSM8K prompt).
    return [{"role": "system", "content": system}, *msgs] if system else msgs


# How the trajectory RATIONALYST reads joins the question's turn and the steps.
TRAJECTORY_JOIN = " "


def trajectory(problem: Problem, steps: Sequence[str]) -> str:
    """T = 'Question: q\\nAnswer: s1 s2 ...', what RATIONALYST reads. The server's
    rationale call and `rationalyst extract`'s question/answer prefixes (making/render.py)
    both come from here, so training conditions on the text the server sends."""
    return TRAJECTORY_JOIN.join([user_turn(problem), *steps])


def rationale_chat(text: str) -> list[dict]:
    """RATIONALYST's input: the text so far as a lone user turn, with no system prompt
    (as the reference). The server's rationale call and `rationalyst train`'s pairs
    both come from here, so training and serving cannot drift."""
    return [{"role": "user", "content": text}]


def rationale_messages(problem: Problem, steps: Sequence[str]) -> list[dict]:
    return rationale_chat(trajectory(problem, steps))


def scorer_messages(problem: Problem, steps: Sequence[str], rationale: str) -> list[dict]:
    """History plus 'Rationale: ...'; the candidate follows as the next assistant turn."""
    return [
        {"role": "system", "content": RATIONALE_SCORER_SYSTEM},
        *_history(layout(problem), steps),
        {"role": "assistant", "content": "Rationale: " + rationale},
    ]
