"""The few-shot instructions sent to the language model, one per description family."""

from __future__ import annotations

SYSTEM = (
    "You describe human actions for a video recognition model. Answer with the description only: "
    "plain sentences, no lists, no quotes, no preamble, at most about 60 words."
)

# Three worked examples per family, on actions outside the usual benchmarks' wording.
EXAMPLES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "decomposition": (
        "Describe how the action decomposes into simpler motions, in the order they happen.",
        [
            (
                "tying shoelaces",
                "A person bends down, crosses the two laces, loops one under the other and pulls "
                "tight, forms a bow with one lace, wraps the other around it and pulls both loops outward.",
            ),
            (
                "shoveling snow",
                "Someone pushes a shovel blade into the snow, lifts the loaded shovel with both "
                "arms, turns the torso to one side and tips the snow off before returning the blade to the ground.",
            ),
            (
                "juggling balls",
                "A person tosses one ball upward from one hand, throws the next as the first "
                "peaks, catches each ball in the opposite hand and keeps repeating the crossing arcs.",
            ),
        ],
    ),
    "body_parts": (
        "Describe which body parts move during the action and how they move.",
        [
            (
                "tying shoelaces",
                "The fingers of both hands pinch and loop the laces while the wrists twist, the "
                "back and neck bend forward and the knees flex to bring the hands near the foot.",
            ),
            (
                "shoveling snow",
                "Both arms grip and push the shovel, the shoulders and torso rotate to throw the "
                "snow, the legs bend and straighten to lift, and the back flexes with each scoop.",
            ),
            (
                "juggling balls",
                "The forearms and wrists flick upward to throw, the hands open and close to "
                "catch, and the eyes and head track the balls while the torso stays still.",
            ),
        ],
    ),
    "synonyms": (
        "Describe the action with synonyms and paraphrases, as different people would name it.",
        [
            (
                "tying shoelaces",
                "Lacing up shoes, knotting shoe laces, doing up one's sneakers or making a bow "
                "with the laces of a boot.",
            ),
            (
                "shoveling snow",
                "Clearing snow with a shovel, digging out a driveway, scooping and throwing snow "
                "off a path after a snowfall.",
            ),
            (
                "juggling balls",
                "Tossing and catching several balls in a cycle, performing a juggling trick, "
                "keeping balls in the air by hand.",
            ),
        ],
    ),
    "scene": (
        "Describe the scene where the action usually happens: the place, the objects and the people around.",
        [
            (
                "tying shoelaces",
                "Usually at a doorway, on a bench or on a stair step, with sneakers or boots, "
                "often before a run or a walk outdoors.",
            ),
            (
                "shoveling snow",
                "A snowy driveway or sidewalk in winter, with piles of white snow, a long-handled "
                "shovel, parked cars and houses in the background.",
            ),
            (
                "juggling balls",
                "A street performance, a circus ring or a park lawn, with colorful balls and an "
                "audience watching the performer.",
            ),
        ],
    ),
}


def messages(family: str, class_name: str) -> list[dict[str, str]]:
    """Chat messages asking for one description of ``class_name`` in ``family``."""
    if family not in EXAMPLES:
        raise ValueError(f"unknown description family {family!r}; expected one of {sorted(EXAMPLES)}")
    task, shots = EXAMPLES[family]
    lines = [task, ""]
    for name, answer in shots:
        lines += [f"Action: {name}", f"Description: {answer}", ""]
    lines += [f"Action: {class_name}", "Description:"]
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n".join(lines)}]
