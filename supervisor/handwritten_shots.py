"""The reference profile's hand-written shots, in our own words, on the datasets' own
training items (the reference wrote its ARC and ProofWriter shots by hand too).

Each shot is (item id, steps): the question, choices and context are read from the
split at run time by id, so only the reasoning is ours. One assistant turn per step:
ARC judges one choice per turn; ProofWriter applies one fact or rule per turn.
"""

from __future__ import annotations

ANSWER = "The answer is:"

# arc_challenge_train.jsonl (none of the items the reference used: 0,1,2,7,62,96,34,32).
ARC = [
    (
        "MCAS_2005_8_4",
        [  # physical change
            "A) Lighting a match burns it, which makes new substances, so it is a chemical change.",
            "B) Breaking a glass changes only its shape; it is still glass, so it is a physical "
            "change.",
            "C) Burning gasoline turns it into gases such as carbon dioxide, a chemical change.",
            "D) Rusting turns iron into iron oxide, a new substance, so it is a chemical change.",
            f"{ANSWER} B",
        ],
    ),
    (
        "Mercury_7239523",
        [  # brain to arm muscle
            "A) Sensory neurons carry signals from the senses towards the brain, not to muscles.",
            "B) Interneurons pass signals between neurons inside the brain and spinal cord.",
            "C) Motor neurons carry signals from the brain and spinal cord out to the muscles.",
            "D) Mechanoreceptor neurons sense touch and pressure; they do not drive muscles.",
            f"{ANSWER} C",
        ],
    ),
    (
        "MCAS_2009_5_6522",
        [  # heat, light and sound
            "A) Fuel is a source of energy, but sound and light are not fuels.",
            "B) Heat, light and sound can all do work, so each is a form of energy.",
            "C) Matter has mass and takes up space, which heat, light and sound do not.",
            "D) Electricity is one form of energy itself, so it cannot contain the other three.",
            f"{ANSWER} B",
        ],
    ),
    (
        "Mercury_407675",
        [  # puddles evaporating
            "A) Heat gives water molecules the energy to escape into the air, so puddles dry "
            "faster.",
            "B) Clouds block sunlight and bring moisture, which slows evaporation.",
            "C) Air is always present, so it does not explain why these puddles dry quickly.",
            "D) Water is what evaporates; it is not the cause of the evaporation.",
            f"{ANSWER} A",
        ],
    ),
    (
        "Mercury_7082635",
        [  # gravitational force depends on
            "A) Volume is the space an object fills; a large, light object pulls weakly.",
            "B) Weight is itself the pull of gravity on an object, not what causes its pull.",
            "C) Mass is the amount of matter, and gravitational force grows with mass.",
            "D) Size, like volume, says nothing about how much matter the object holds.",
            f"{ANSWER} C",
        ],
    ),
    (
        "ACTAAP_2009_7_4",
        [  # longest planetary year
            "A) Earth's year is 365 days, and Earth is the third planet from the Sun.",
            "B) Venus is closer to the Sun than Earth, so its year is shorter.",
            "C) Jupiter is far from the Sun, and its year is about 12 Earth years.",
            "D) Neptune is the farthest of these planets, so its orbit, and its year, is the "
            "longest.",
            f"{ANSWER} D",
        ],
    ),
    (
        "VASoL_2007_3_13",
        [  # liquid water
            "A) Frost is ice crystals, which are solid water.",
            "B) Ice is frozen water, a solid.",
            "C) Rain falls as drops of liquid water.",
            "D) Steam is water vapour, a gas.",
            f"{ANSWER} C",
        ],
    ),
]

# proofwriter_dev.jsonl: one True, one False, one Unknown, one rule per turn.
PROOFWRITER = [
    (
        "ProofWriter_AttNoneg-OWA-D5-1286_Q7",
        [
            "Gary is green.",
            "If something is green then it is young, so Gary is young.",
            "Young things are white, so Gary is white.",
            "White things are blue, so Gary is blue, and the statement is true.",
            f"{ANSWER} A",
        ],
    ),
    (
        "ProofWriter_AttNoneg-OWA-D5-83_Q10",
        [
            "Erin is cold and Erin is rough.",
            "All cold people are white, so Erin is white.",
            "Erin is cold and white, so Erin is quiet.",
            "White, quiet people are smart, so Erin is smart.",
            "Erin is smart and rough, so Erin is young, and the statement is false.",
            f"{ANSWER} B",
        ],
    ),
    (
        "ProofWriter_AttNoneg-OWA-D5-301_Q16",
        [
            "Fiona is blue, and all blue people are smart, so Fiona is smart.",
            "Only young people are said to be cold, and nothing says that Fiona is young.",
            "No other fact or rule says whether Fiona is cold, so the statement is unknown.",
            f"{ANSWER} C",
        ],
    ),
]

# hellaswag.jsonl (validation; there is no train split here): these items are left out
# of `rationalyst eval`'s HellaSwag runs. Our own protocol (the reference has none for
# HellaSwag): one ending judged per turn, as ARC's shots do.
HELLASWAG = [
    (
        "hellaswag-val-112",
        [
            "A) Cutting to the people watching is a natural next shot of a game on a field.",
            "B) A 'dirt bucker' is not a thing, so this ending makes no sense.",
            "C) Nothing so far suggests that the men fall; they are playing.",
            "D) The men ride donkeys, not horses, so this ending contradicts the text.",
            f"{ANSWER} A",
        ],
    ),
    (
        "hellaswag-val-4574",
        [
            "A) Quail eggs do not breathe, and oil is not how eggs are boiled.",
            "B) Boiling for a set time and then cooling in cold water is the next step of "
            "boiling eggs.",
            "C) The water is already boiling, so bringing it to a boil again repeats a step.",
            "D) Boiled eggs do not turn red and shriveled; this ending is nonsense.",
            f"{ANSWER} B",
        ],
    ),
    (
        "hellaswag-val-728",
        [
            "A) Squishing squash so it sticks has nothing to do with dressing a salad.",
            "B) She is dressing the salad; taking a drink and putting the bottle on the "
            "cutting board is unlikely.",
            "C) After pouring on more dressing, she tosses the salad to mix it in.",
            "D) Nothing suggests that she needs a tissue while she is making the salad.",
            f"{ANSWER} C",
        ],
    ),
    (
        "hellaswag-val-2806",
        [
            "A) Weightlifters do not kick the barbell.",
            "B) The barbell is already above her head, so lifting it back over her head "
            "repeats what happened.",
            "C) No one does a flip while holding a barbell; this is not what lifters do.",
            "D) Once the lift is done, lifters drop the barbell to the ground.",
            f"{ANSWER} D",
        ],
    ),
]
