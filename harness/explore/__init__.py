"""Property-based chaos: Hypothesis generates fault schedules, runs them on the live shops, checks
the ledger invariants, and shrinks a violation to a minimal replayable experiment.

    strategies.py  fault schedules and loads as Experiments; the properties; weak/strong configs
    search.py      explore(): find + shrink + write the TOML + replay it (`chaoscafe explore`)
    machine.py     a RuleBasedStateMachine driving a live shop step by step (place, inject, heal, scale, wait)
"""
