"""The web page in a real headless Chromium against a real server process."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("uvicorn", reason="needs the serve extra")
from serve_util import running_server  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "runs"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() or not Path(DRIVER).exists(),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
           "chromium-driver)")


@pytest.fixture
def browser(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (dev extra)")
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'chrome'}", "--window-size=1280,1400",
                 "--lang=en-US"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(options=opts, service=Service(DRIVER))
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver, cond, what: str, timeout: float = 60):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # The page re-renders results as answers arrive; an element read mid-render is retried.
    return WebDriverWait(driver, timeout, ignored_exceptions=(
        StaleElementReferenceException,)).until(cond, message=f"waiting for {what}")


def _hit_langs(driver, scope: str = "") -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0] + 'li.hit')]"
        ".map(e => e.dataset.lang)", scope)


def test_search_filter_open_passage_and_rtl(corpus_index, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    d = browser
    with running_server(corpus_index, "--bench-dir", str(BENCH)) as (base, _):
        d.get(base + "/")
        box = _wait(d, lambda d: d.find_element(By.ID, "q"), "search box")
        _wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#langs input"), "facets")
        # Keyboard only: focus the box, type an English query, press Enter.
        box.click()
        box.send_keys(Keys.TAB)
        focused = d.switch_to.active_element
        assert focused.get_attribute("id") == "k"  # focus order: box, hits count, button
        assert d.execute_script("return getComputedStyle(arguments[0]).outlineStyle",
                                focused) != "none"  # focus is visible
        box.click()
        box.send_keys("volcanic eruption and evacuation", Keys.ENTER)
        langs = _wait(d, lambda d: _hit_langs(d), "hits")
        assert len(set(langs)) >= 3 and any(not x.startswith("eng") for x in langs), langs
        d.save_screenshot(str(tmp_path / "1-search.png"))

        # Tick two language facets: only those languages remain.
        def tick(code: str):
            def act(d):
                box = d.find_element(By.ID, f"lang-{code}")
                if not box.is_selected():
                    box.send_keys(Keys.SPACE)
                return d.find_element(By.ID, f"lang-{code}").is_selected()
            return act

        for code in ("arb_Arab", "zho_Hans"):  # the facets re-render as answers arrive
            _wait(d, tick(code), f"facet {code} ticked")
        _wait(d, lambda d: "lang=zho_Hans" in d.current_url and "lang=arb_Arab"
              in d.current_url, "filter in the URL")
        _wait(d, lambda d: set(_hit_langs(d)) == {"arb_Arab", "zho_Hans"}, "filtered hits")
        d.save_screenshot(str(tmp_path / "2-filtered.png"))
        # Two languages of ~8 passages each fill ten places with off-topic passages too: those
        # no closer to the query than their language's average are marked, the volcano
        # passages are not, and the status line counts them.
        marks = d.execute_script(
            "return [...document.querySelectorAll('li.hit')].map(e => [+e.dataset.relevance, "
            "e.classList.contains('weak'), !!e.querySelector('.weak-note')])")
        assert [w for _, w, _ in marks] == [r <= 0 for r, _, _ in marks]
        assert all(w == note for _, w, note in marks)
        assert not marks[0][1] and sum(w for _, w, _ in marks) >= 3, marks
        top = d.find_elements(By.CSS_SELECTOR, "li.hit")[:2]
        assert all("volcan" in h.text.lower() or "火山" in h.text or "بركان" in h.text
                   for h in top), [h.text for h in top]
        assert f"({sum(w for _, w, _ in marks)} no closer than" in \
            d.find_element(By.ID, "status").text

        # The Arabic hit renders right to left; the Chinese one carries its language.
        def scripts(d):
            arabic = d.find_element(By.CSS_SELECTOR, "li.hit[data-lang=arb_Arab] p.snippet")
            chinese = d.find_element(By.CSS_SELECTOR, "li.hit[data-lang=zho_Hans] p.snippet")
            return (arabic.get_attribute("dir"),
                    d.execute_script("return getComputedStyle(arguments[0]).direction", arabic),
                    chinese.get_attribute("lang"))
        assert _wait(d, scripts, "hits settled") == ("rtl", "rtl", "zh-Hans")

        # Open the Arabic passage from the keyboard: its document with the passage marked.
        _wait(d, lambda d: d.find_element(By.CSS_SELECTOR, "li.hit[data-lang=arb_Arab] a.open"
                                          ).send_keys(Keys.ENTER) or True, "open link")
        current = _wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, ".passage.current"),
                        "passage view")[0]
        assert "/passage/" in d.current_url
        assert current.find_element(By.CSS_SELECTOR, "p.text").get_attribute("dir") == "rtl"
        other_langs = set(_wait(d, lambda d: _hit_langs(d, ".others "), "other languages"))
        assert "arb_Arab" not in other_langs and len(other_langs) >= 5
        # The nearest English passage to an Arabic volcano passage is about the volcano.
        eng = d.find_element(By.CSS_SELECTOR, ".others li.hit[data-lang=eng_Latn]")
        assert "volcan" in eng.text.lower()
        d.save_screenshot(str(tmp_path / "3-passage.png"))

        d.get(base + "/#/bench")
        cells = _wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "table.heat td"),
                      "heatmap")
        assert len(cells) >= 4
        d.save_screenshot(str(tmp_path / "4-bench.png"))
    print("screenshots in", tmp_path)


def test_the_page_keeps_to_the_view_asked_for(corpus_index, browser, tmp_path):
    """Links with any hit count, facets that follow the index, the skip link, and answers
    that arrive after the user moved on; the server refuses host names it was not given."""
    import httpx
    from click.testing import CliRunner
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from xsearch.cli import cli

    index = tmp_path / "index"
    shutil.copytree(corpus_index, index)
    d = browser
    with running_server(index, "--allow-host", "search.example.org") as (base, proc):
        # DNS rebinding: a request naming another host is refused, an allowed one is not.
        assert httpx.get(base + "/api/health", headers={"host": "evil.example"}
                         ).status_code == 403
        assert httpx.get(base + "/api/health", headers={"host": "search.example.org:80"}
                         ).status_code == 200

        # A link asking for 3 hits (not in the list): 3 hits, and the next search keeps 3.
        d.get(base + "/#/?q=bread&k=3")
        _wait(d, lambda d: len(_hit_langs(d)) == 3, "3 hits")
        assert d.find_element(By.ID, "k").get_attribute("value") == "3"
        box = d.find_element(By.ID, "q")
        box.clear()
        box.send_keys("coffee harvest", Keys.ENTER)
        _wait(d, lambda d: "coffee" in d.current_url and len(_hit_langs(d)) == 3,
              "3 coffee hits")
        assert "k=3" in d.current_url and not d.find_elements(By.CSS_SELECTOR, "p.error")

        # The skip link moves the focus to the results and leaves them in place.
        skip = d.find_element(By.CSS_SELECTOR, "a.skip")
        d.execute_script("arguments[0].focus()", skip)
        skip.send_keys(Keys.ENTER)
        _wait(d, lambda d: d.switch_to.active_element.get_attribute("id") == "main",
              "focus on the results")
        assert len(_hit_langs(d)) == 3 and d.find_element(By.ID, "q").get_attribute(
            "value") == "coffee harvest"

        # Facets follow the index: Thai removed by another process is gone from them
        # on the next search, without reloading the page.
        assert d.find_elements(By.ID, "lang-tha_Thai")
        out = CliRunner().invoke(cli, ["rm", "*tha_Thai*", "--index", str(index)],
                                 env={"XSEARCH_CONFIG": ""})
        assert out.exit_code == 0, out.output
        box = d.find_element(By.ID, "q")
        box.clear()
        box.send_keys("volcano", Keys.ENTER)
        _wait(d, lambda d: "volcano" in d.current_url and _hit_langs(d)
              and not d.find_elements(By.ID, "lang-tha_Thai"), "facets without Thai")

        # A search answered late (held back here for 3 s) does not cover the passage view
        # the user opened meanwhile.
        pid = d.execute_script(
            "return document.querySelector('li.hit a.open').getAttribute('href')")
        d.execute_script("""
            const real = window.fetch;
            window.fetch = (url, opts) => String(url).startsWith('/api/search')
              ? new Promise((ok) => setTimeout(() => ok(real(url, opts)), 3000))
              : real(url, opts);
            location.hash = '#/?q=solar+power&k=5';""")
        d.execute_script("setTimeout(() => { location.hash = arguments[0]; }, 300)", pid)
        _wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, ".passage.current"),
              "passage view")
        d.execute_script("window.__waited = false; setTimeout(() => window.__waited = true, "
                         "4000)")
        _wait(d, lambda d: d.execute_script("return window.__waited"), "the late answer")
        assert d.current_url.endswith(pid)
        assert d.find_elements(By.CSS_SELECTOR, ".passage.current")
        assert not d.find_elements(By.CSS_SELECTOR, "#main > ol.hits")

        # A link's language code or name ticks the language it names, not a phantom facet.
        for name in ("fra", "fr", "French"):
            d.get(base + f"/#/?q=bread&lang={name}&k=5")
            _wait(d, lambda d: _hit_langs(d) and set(_hit_langs(d)) == {"fra_Latn"}
                  and d.find_elements(By.ID, "lang-fra_Latn")
                  and d.find_element(By.ID, "lang-fra_Latn").is_selected(), f"French ({name})")
            assert not d.find_elements(By.ID, f"lang-{name}")

        # The server gone: the page says so in words, not the browser's "Failed to fetch".
        proc.terminate()
        proc.wait(timeout=30)
        d.execute_script("location.hash = '#/?q=volcano+ash&k=5'")
        _wait(d, lambda d: "does not answer" in d.find_element(By.TAG_NAME, "body").text,
              "the server-gone message")


def test_marks_land_on_the_words_after_emoji_and_a_bad_k_in_a_link_is_left_out(browser,
                                                                              tmp_path):
    """The API counts a hit's highlight offsets in code points, the page in UTF-16 units:
    each emoji (or rare CJK character) before a match once moved its mark one unit left, cut
    a character in two. A link asking for k=500 once broke every later search."""
    from click.testing import CliRunner
    from selenium.webdriver.common.by import By

    from xsearch.cli import cli

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "emoji.txt").write_text("🍞🍞🍞🍞 𠀀𠀁 The sourdough starter needs daily feeding "
                                    "with flour and water.\n", encoding="utf-8")
    (docs / "lava.txt").write_text("Lava flowed down the slope of the volcano.\n",
                                   encoding="utf-8")
    index = tmp_path / "index"
    assert CliRunner().invoke(cli, ["index", str(docs), "--index", str(index), "-q"],
                              env={"XSEARCH_CONFIG": ""}).exit_code == 0
    d = browser
    with running_server(index) as (base, _):
        d.get(base + "/#/?q=sourdough%20starter&k=500")
        _wait(d, lambda d: _hit_langs(d), "hits")
        marks = d.execute_script(
            "return [...document.querySelectorAll('li.hit mark')].map(m => m.textContent)")
        assert [m.lower() for m in marks] == ["sourdough", "starter"], marks
        assert d.find_element(By.ID, "k").get_attribute("value") != "500"
        assert not d.find_elements(By.CSS_SELECTOR, "p.error")
        assert "500" not in [o.get_attribute("value") for o in
                             d.find_elements(By.CSS_SELECTOR, "#k option")]
