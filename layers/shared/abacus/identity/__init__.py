"""Persons: the ids one person uses joined into one ($identify, $create_alias, $merge_dangerously,
and $anon_distinct_id on a flags request), with the person's assignments moved together, first
exposure winning (joins); and the person properties events set (person_updates).

May import: core, storage, experiments.
"""
