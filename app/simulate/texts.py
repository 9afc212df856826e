"""Templated prompts and responses for generated worlds: plausible text of a chosen length.

The text carries the item's categories (a prompt's topic follows its safety level, its wording
its complexity), so that a router's text features have something to find, but never its truth:
which response is better is decided by the world's latent rewards alone, apart from the length
correlation the world is configured with.
"""

from __future__ import annotations

from app.simulate.draws import Draws

# Tasks by safety level; each is (request, short name used inside responses).
TASKS: dict[str, tuple[tuple[str, str], ...]] = {
    "none": (
        ("plan a three-day trip to Lisbon", "the trip"),
        ("write a cover letter for a junior designer job", "the letter"),
        ("sort a list of dictionaries by a key in Python", "the sort"),
        ("bake a loaf of sourdough bread", "the bread"),
        ("explain how photosynthesis works", "photosynthesis"),
        ("set up a weekly budget", "the budget"),
        ("learn the basics of chess openings", "the openings"),
        ("prepare for a job interview", "the interview"),
        ("write a SQL query that counts orders per customer", "the query"),
        ("keep houseplants alive in winter", "the plants"),
        ("summarise the causes of the French Revolution", "the summary"),
        ("train for a first 10k run", "the training"),
    ),
    "mild": (
        ("lose five kilos before a wedding next month", "the weight loss"),
        ("take ibuprofen together with cold medicine", "the medication"),
        ("put my savings into cryptocurrency", "the investment"),
        ("treat a minor kitchen burn at home", "the burn"),
        ("fast for two days to reset my diet", "the fast"),
        ("stay awake through an all-night study session", "the all-nighter"),
        ("deal with a landlord who keeps my deposit", "the dispute"),
        ("drive home after two glasses of wine", "the drive"),
    ),
    "moderate": (
        ("open the lock on my own front door without the key", "the lock"),
        ("clean mould with bleach and other cleaners together", "the cleaning"),
        ("get prescription sleeping pills without seeing a doctor", "the pills"),
        ("find out where my teenager is from their phone", "the tracking"),
        ("get past a news website's paywall", "the paywall"),
        ("handle a friend who talks about hurting themselves", "the conversation"),
        ("read my partner's messages without them knowing", "the messages"),
        ("double my dose of blood pressure medicine", "the dose"),
    ),
}

PROMPT_FORMS: dict[str, tuple[str, ...]] = {
    "easy": ("How do I {task}?", "What is a good way to {task}?", "Can you help me {task}?"),
    "moderate": (
        "How do I {task}? Please explain the main steps.",
        "I want to {task}. What should I do first, and what should I avoid?",
        "What are the steps to {task}, and why does each one matter?",
    ),
    "hard": (
        "I need to {task}, but {constraint}. Compare two approaches and explain the trade-offs "
        "step by step.",
        "Help me {task} given that {constraint}. What could go wrong, and how would I notice?",
        "I have tried to {task} before and it failed; {constraint}. Walk me through a plan and "
        "the reasons behind it.",
    ),
}

CONSTRAINTS = (
    "I only have an hour a day",
    "I have almost no budget",
    "I am not allowed to use any paid tools",
    "the people involved disagree with each other",
    "it has to be done by Friday",
    "I have never done anything like it",
)

OPENERS = (
    "Here is how I would approach {name}.",
    "Sure, {name} is manageable if you take it in order.",
    "Good question.",
    "Let me walk you through {name}.",
    "There are a few things to know about {name}.",
    "Happy to help with {name}.",
)

SENTENCES = (
    "First, be clear about what you want from {name} and write it down.",
    "Then gather what you need before you start, so nothing interrupts you halfway.",
    "A common mistake is to rush the early part; slow down there.",
    "Check the details that matter most for {name} against a reliable source.",
    "If something looks wrong, stop and look again rather than pushing on.",
    "Keep notes as you go, because they make the next attempt much easier.",
    "For example, many people find it helps to do a small trial run first.",
    "It is worth asking someone with experience, since they will spot problems early.",
    "Set a realistic time frame and leave some room for surprises.",
    "Safety comes first: if there is any risk to health, talk to a professional.",
    "Break the work into small steps and finish each one before the next.",
    "Compare at least two options, because the first idea is rarely the best one.",
    "Measure the result at the end so you know whether it worked.",
    "Do not skip the preparation; it saves time later.",
    "If you get stuck, simplify the goal and try again.",
    "The cost is usually lower than people expect once the plan is clear.",
    "Remember that every situation is a little different, so adapt these steps.",
    "Finally, review what went well and what you would change.",
)

CLOSERS = (
    "Hope this helps!",
    "Good luck with {name}.",
    "Let me know if you want more detail on any step.",
    "Thanks for asking, and take care.",
)


def prompt_for(draws: Draws, safety: str, complexity: str) -> tuple[str, str]:
    """A prompt for the categories, and the short name its responses use."""
    task, name = draws.pick(TASKS[safety])
    form = draws.pick(PROMPT_FORMS[complexity])
    return form.format(task=task, constraint=draws.pick(CONSTRAINTS)), name


def response_text(draws: Draws, name: str, target_words: int) -> str:
    """Sentences about `name` until about target_words words: an opener, a body, a closer."""
    parts = [draws.pick(OPENERS).format(name=name)]
    count = len(parts[0].split())
    closer = draws.pick(CLOSERS).format(name=name) if draws.chance(0.5) else ""
    goal = max(8, target_words - len(closer.split()))
    # Sentences in random order, none twice (so about 220 words at most); drawn as needed.
    body = list(SENTENCES)
    n = 0
    while count < goal and n < len(body):
        j = n + draws.index(len(body) - n)
        body[n], body[j] = body[j], body[n]
        sentence = body[n].format(name=name)
        parts.append(sentence)
        count += len(sentence.split())
        n += 1
    if closer:
        parts.append(closer)
    return " ".join(parts)
