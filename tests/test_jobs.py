"""The one job runner (components/jobs.py) as a page uses it, in AppTest: the cost before it starts, the button
disabled while it works, a partial result after every step, Cancel keeping the finished steps so the next Run
resumes from them, and a user error shown beside the button with the previous result dropped."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def job_page() -> None:
    """A page with one three-step job; ``st.session_state['fail']`` makes step 2 fail, ``'stop'`` interrupts it
    (what Streamlit does to a script when Cancel or another widget is pressed, or the session goes)."""
    import streamlit as st

    from components import jobs, session_results

    calls = st.session_state.setdefault("calls", [])

    def work(i: int):
        def run(progress):
            def compute():
                if i == 1 and st.session_state.pop("stop", False):
                    st.stop()
                if i == 1 and st.session_state.get("fail"):
                    raise ValueError("step 2 cannot run")
                calls.append(i)
                progress(0.5, "half way")
                return i * 10

            return jobs.remembered(("test-job", st.session_state.get("run_id", 0), i), compute)

        return run

    plan = jobs.Plan("test job", tuple(jobs.Step(f"part {i}", work(i), 0.5) for i in range(3)), unit="part")
    if jobs.job_button("Run", key="job_run", plan=plan):
        jobs.run_job(
            plan,
            key="job_run",
            combine=sum,
            store=lambda total: session_results.put("job", total),
            show=lambda total, k: (
                st.write(f"partial {total}"),
                st.session_state.setdefault("shown", []).append((k, total)),
            ),
            failure="Could not run",
            forget=lambda: session_results.pop("job"),
        )
    result = session_results.get("job")
    st.write(f"result {result}")


def page() -> AppTest:
    at = AppTest.from_function(job_page, default_timeout=60)
    at.session_state["run_id"] = id(at)  # steps are remembered per process: one run id per test
    return at.run()


def markdown(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def test_the_cost_is_said_before_and_the_result_stored_after():
    at = page()
    assert any(c.value == "**Cost:** 3 parts, ≈ 2 s on this machine." for c in at.caption), [
        c.value for c in at.caption
    ]
    assert "result None" in markdown(at) and not at.button(key="job_run").disabled
    at.button(key="job_run").click().run()
    assert not at.exception, at.exception
    assert "result 30" in markdown(at) and at.session_state["calls"] == [0, 1, 2]
    assert not at.button(key="job_run").disabled  # the rerun at the end draws it enabled


def test_partial_results_are_drawn_after_each_step_but_the_last():
    at = page()
    at.button(key="job_run").click().run()
    assert at.session_state["shown"] == [(0, 0), (1, 10)]  # (step, the parts combined so far)
    assert "result 30" in markdown(at)  # the last is the stored result, drawn by the rerun


def test_an_interrupted_job_keeps_its_finished_steps_and_the_next_run_resumes():
    at = page()
    at.session_state["stop"] = True
    at.button(key="job_run").click().run()
    assert not at.exception
    assert at.session_state["calls"] == [0]  # stopped in step 2: step 1 finished
    at.run()  # the rerun that follows a Cancel: no result yet, the button enabled
    assert "result None" in markdown(at) and not at.button(key="job_run").disabled
    at.button(key="job_run").click().run()
    assert not at.exception
    assert at.session_state["calls"] == [0, 1, 2]  # step 1 was not run again
    assert "result 30" in markdown(at)


def test_a_user_error_is_shown_beside_the_button_and_drops_the_previous_result():
    at = page()
    at.button(key="job_run").click().run()
    assert "result 30" in markdown(at)
    at.session_state["run_id"] = at.session_state["run_id"] + 1  # new steps: nothing remembered
    at.session_state["fail"] = True
    at.button(key="job_run").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Could not run: step 2 cannot run"]
    assert "result None" in markdown(at)
    at.run()  # shown once
    assert not at.error


def test_a_cached_service_that_waited_in_line_replays_without_an_error():
    """A cached service inside :func:`components.jobs.heavy` that waits for a busy line: the line's message is
    drawn on a placeholder made outside the service, so it must not be recorded for replay (the CI's
    CacheReplayClosureError on lesson 1, whose classifier the warm-up was using)."""

    def script():
        import threading
        import time

        import streamlit as st

        from components import jobs
        from glimpse.work_queue import ModelQueue

        line = st.session_state.setdefault("line", ModelQueue("tiny"))

        @st.cache_data(show_spinner=False)
        def doubled(x: int) -> int:
            with line:
                return 2 * x

        if "held" not in st.session_state:  # the first run: another user holds the line for a moment
            st.session_state.held = True
            busy = threading.Event()

            def hold():
                with line:
                    busy.set()
                    time.sleep(0.8)

            threading.Thread(target=hold, daemon=True).start()
            busy.wait()
        with st.container():
            with jobs.heavy("doubling"):
                st.write(f"result {doubled(21)}")

    at = AppTest.from_function(script, default_timeout=30).run()
    assert not at.exception, at.exception
    assert [m.value for m in at.markdown] == ["result 42"]
    at.run()  # a cache hit replays what the service drew: nothing of the line's
    assert not at.exception, at.exception
    assert [m.value for m in at.markdown] == ["result 42"]
