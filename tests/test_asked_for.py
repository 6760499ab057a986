"""What a question asks for (a price, a person) and whether an answer gives it (``knowledge.asked_for``):
the rule that keeps a curated answer without a price from being spoken for "how much"."""
from __future__ import annotations

import pytest

from talkerd.answer.knowledge.asked_for import Asked, asked_for, gives, lacks
from talkerd.answer.knowledge.parts import statement_parts
from talkerd.answer.knowledge.text import stem


@pytest.mark.parametrize("question, price, roles", [
    ("How much is story time?", True, set()),
    ("what does a slice of cake cost", True, set()),
    ("Is there a charge for the wifi?", True, set()),
    ("Do I have to pay for the guided tour?", True, set()),
    ("Can I charge my phone somewhere?", False, set()),  # to charge a phone is no price
    ("Can I get a charge for my phone?", False, set()),
    ("How much time does the tour take?", False, set()),  # how long, not how much
    ("how much longer are you open today", False, set()),
    ("Where do I have to pay?", False, set()),  # where, not how much
    ("Can I pay for parking by card?", False, set()),
    ("Who is the manager here?", False, {"manager"}),
    ("who founded the museum", False, {"founded"}),
    ("What's the name of the curator?", False, {"curator"}),
    ("Who can help me find a book?", False, set()),  # asks for help, not a name
    ("who do I ask about something I lost", False, set()),
    ("Who is the best person to ask about books?", False, set()),
    ("Who manages the café?", False, {"manages"}),
    ("Where are the toilets?", False, set()),
])
def test_asked_for(question, price, roles):
    asked = asked_for(question)
    assert asked.price is price
    assert asked.roles == frozenset(stem(role) for role in roles)  # as the answers' words are compared
    assert bool(asked) is (price or bool(roles))


@pytest.mark.parametrize("answer, price", [
    ("Adults are £12, children £6.", True),
    ("A coffee is two pounds eighty.", True),
    ("Yes, the wifi is free.", True),
    ("Most arrive in two or three days, at no extra charge.", True),
    ("Story time is every Saturday at 11.", False),
    ("Vegan and gluten-free choices every day, and step-free access.", False),
    ("Gluten free cakes, and feel free to ask.", False),
    ("Open 9 a.m. to 5 p.m., on Pound Lane.", False),  # no p for pence, no street for money
    ("Lockers take a £1 coin.", True),
    ("A go on the ride is 50p.", True),
])
def test_an_answer_gives_a_price_when_it_names_money_or_says_free(answer, price):
    assert gives(answer).price is price


def test_an_answer_gives_a_person_when_it_names_the_role_and_a_name():
    manager = asked_for("Who is the manager?")
    assert not lacks(manager, gives("Our manager is Sarah Jones."))
    assert lacks(manager, gives("Our café is upstairs on the first floor."))  # neither
    assert lacks(manager, gives("Please ask a manager at the counter."))  # the role, but no one named
    # One word family: "manages" is answered by "manager", "founded" by "founder".
    assert not lacks(asked_for("Who manages the café?"), gives("Our manager is Sam Hill."))
    assert not lacks(asked_for("Who founded the museum?"), gives("Our founder was Jane Hill, in 1989."))
    # A day, a month or a holiday is no one's name; a place is not the role asked about.
    author = asked_for("Who is the author at Thursday's reading?")
    assert lacks(author, gives("We hold author readings most Thursday evenings at 7."))
    assert lacks(asked_for("Who founded the museum?"), gives("We're in Albion Mill, 4 Mill Lane, Calderford."))
    # The role and the name in one sentence: "found" beside a hall's name is no founder.
    founder = asked_for("Who founded the museum?")
    assert lacks(founder, gives("Please ask at the information desk in the Main Hall. We keep anything found for 30 days."))
    assert not lacks(manager, gives("The café is run by our manager, Sarah Jones."))


def test_a_question_that_asks_for_nothing_lacks_nothing():
    assert not lacks(Asked(), gives("Story time is every Saturday at 11."))
    assert not lacks(asked_for("How much is a coffee?"), gives("A coffee is £2.80."))


def test_a_price_asked_about_one_thing_is_not_given_by_a_price_of_another():
    about = frozenset({stem("coffee"), stem("café")})
    membership = "Friends of the Museum is £40 a year. Friends get 10% off in the café and shop."
    assert gives(membership).price and not gives(membership, about).price  # the £40 is the membership's
    cafe = "The café serves coffee, tea and cakes. A coffee is two pounds eighty and a slice of cake three fifty."
    assert gives(cafe, about).price
    assert not gives(cafe, frozenset({stem("tea")})).price  # the tea's price is not said


def test_statement_parts_cut_between_things_not_inside_numbers():
    assert statement_parts("In steam at 11:00 and 14:30, £1,000 a year. Note: free") == [
        "In steam at 11:00", "14:30", "£1,000 a year.", "Note", "free"]
