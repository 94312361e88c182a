"""Step numbers of a session's tree (``store/tree.py``): 1, 2, 3… in the order the steps were
made, one number per step across all branches, the same in the tree and in a branch's
recorded events (replay). LangGraph's own numbers start at -1 and restart on each branch."""

from __future__ import annotations

from openmanus_tui.config import load_settings
from openmanus_tui.runtime.session import Runtime
from openmanus_tui.store.tree import branch_events, load_tree


async def test_steps_count_from_one_and_never_repeat_across_branches() -> None:
    runtime = await Runtime.open(load_settings({"approval": {"mode": "yolo"}}))
    try:
        session = await runtime.create_session()
        assert (await session.run("first")).ok
        tree = await load_tree(runtime.db, session.id)
        first_input = min(tree.nodes.values(), key=lambda n: n.seq)
        start = next(c for c in tree.nodes.values() if c.source == "input")
        await session.history.fork(start.checkpoint_id, message="second")
        assert (await session.run("second")).ok

        tree = await load_tree(runtime.db, session.id)
        assert len(tree.heads) == 2
        by_seq = sorted(tree.nodes.values(), key=lambda n: n.seq)
        assert [n.step for n in by_seq] == list(range(1, len(by_seq) + 1))
        assert first_input.step == 1
        # Each branch's recorded steps are numbered in the order they were made; the stored
        # events keep LangGraph's own numbers (the record is not rewritten).
        for head in tree.heads:
            events = await branch_events(runtime.db, session.id, head)
            line = [e.checkpoint_id for e in events if e.type == "checkpoint"]
            assert line == tree.lineage(head)
            numbers = [tree.nodes[cid].step for cid in line]
            assert numbers == sorted(numbers) and numbers[0] == 1
        assert any(e.step == -1 for e in await runtime.db.events(session.id)
                   if e.type == "checkpoint")
    finally:
        await runtime.close()
