"""Cost stage: price book, scenario, TCO simulation, break-even and sensitivity.

Entry points: `scenario.load_scenario`, `analysis.price_book_for`, `analysis.analyse`;
`ragortune.decide.decide` turns the analysis into a recommendation.
"""
