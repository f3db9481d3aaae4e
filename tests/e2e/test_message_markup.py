"""Safe rendering of message text (SPEC §5 "Rendering", static/js/markup.js), unit-tested
in real Chromium: links, `code`, fenced blocks, *bold*, _italic_, ~strike~ become DOM
nodes; nothing in a text ever becomes markup of its own, however hostile."""

from __future__ import annotations

from playwright.async_api import expect

#: Renders each text into a <div> and returns its serialisation, the tags used and
#: every attribute of every element, so tests can see exactly what was built.
RENDER = """async (texts) => {
  const { renderNodes } = await import('/static/js/markup.js');
  const attributes = (e) => Object.fromEntries([...e.attributes].map((a) => [a.name, a.value]));
  return texts.map((text) => {
    const div = document.createElement('div');
    div.append(...renderNodes(text));
    const elements = [...div.querySelectorAll('*')];
    return {
      html: div.innerHTML,
      text: div.textContent,
      tags: elements.map((e) => e.tagName.toLowerCase()),
      attrs: elements.map((e) => attributes(e)),
    };
  });
}"""

LINK = 'target="_blank" rel="noopener noreferrer nofollow"'

CASES = {
    "<b>x</b>": "&lt;b&gt;x&lt;/b&gt;",
    "<img src=x onerror=alert(1)>": "&lt;img src=x onerror=alert(1)&gt;",
    "*bold*": "<strong>bold</strong>",
    "_italic_": "<em>italic</em>",
    "~strike~": "<s>strike</s>",
    "a *b* c": "a <strong>b</strong> c",
    "*_~all~_*": "<strong><em><s>all</s></em></strong>",
    "`a *b* <i>`": "<code>a *b* &lt;i&gt;</code>",
    "```\nx = *1* <b>\n```": "<pre><code>x = *1* &lt;b&gt;</code></pre>",
    "```py\nprint(1)\n```after": "<pre><code>print(1)</code></pre>after",
    "snake_case_name and 2*3*4": "snake_case_name and 2*3*4",
    "*unclosed and _also": "*unclosed and _also",
    "**": "**",
    "* spaced *": "* spaced *",
    "*a _b* c_": "<strong>a _b</strong> c_",
    "`unclosed code": "`unclosed code",
    "```unclosed fence": "```unclosed fence",
    "javascript:alert(1)": "javascript:alert(1)",
    "http://": "http://",
    "xhttp://example.com": "xhttp://example.com",
    "see https://example.com/a_b_c.": f'see <a href="https://example.com/a_b_c" {LINK}>https://example.com/a_b_c</a>.',
    "*https://example.com/x*": f'<strong><a href="https://example.com/x" {LINK}>https://example.com/x</a></strong>',
    "(https://en.wikipedia.org/wiki/Foo_(bar))": (
        f'(<a href="https://en.wikipedia.org/wiki/Foo_(bar)" {LINK}>'
        "https://en.wikipedia.org/wiki/Foo_(bar)</a>)"
    ),
    'https://e.com/"onmouseover="alert(1)': (
        f'<a href="https://e.com/" {LINK}>https://e.com/</a>"onmouseover="alert(1)'
    ),
    "<a href=javascript:alert(1)>x</a>": "&lt;a href=javascript:alert(1)&gt;x&lt;/a&gt;",
    "`https://example.com`": "<code>https://example.com</code>",
}


async def test_markup_is_built_as_dom_nodes_and_hostile_text_stays_text(people):
    alice = await people()
    await alice.register("alice")
    texts = list(CASES)
    results = await alice.page.evaluate(RENDER, texts)
    for text, result in zip(texts, results, strict=True):
        assert result["html"] == CASES[text], text
    allowed = {"a", "strong", "em", "s", "code", "pre"}
    for result in results:
        assert set(result["tags"]) <= allowed
        for tag, attrs in zip(result["tags"], result["attrs"], strict=True):
            if tag == "a":
                assert attrs["href"].startswith(("http://", "https://"))
                assert attrs["rel"] == "noopener noreferrer nofollow"
                assert attrs["target"] == "_blank"
                assert set(attrs) == {"href", "rel", "target"}
            else:
                assert attrs == {}


#: For each text: the milliseconds rendering took, the text shown, the tags built.
MEASURE = """async (texts) => {
  const { renderNodes } = await import('/static/js/markup.js');
  return texts.map((text) => {
    const started = performance.now();
    const div = document.createElement('div');
    div.append(...renderNodes(text));
    const ms = performance.now() - started;
    const tags = new Set([...div.querySelectorAll('*')].map((e) => e.tagName.toLowerCase()));
    const links = div.querySelectorAll('a').length;
    return { ms, shown: div.textContent.length, links, tags: [...tags] };
  });
}"""


async def test_huge_and_pathological_inputs_render_fast_and_safely(people):
    alice = await people()
    await alice.register("alice")
    texts = [
        "*a " * 40_000,  # openers that never close
        "_" * 100_000,
        "`" * 50_001,
        "https://e.com/ " * 5_000,
        "*_~" * 20_000 + "x" + "~_*" * 20_000,  # deep nesting, capped
        "```" * 10_001,
        "<b>" * 30_000,
    ]
    results = await alice.page.evaluate(MEASURE, texts)
    for text, result in zip(texts, results, strict=True):
        assert result["ms"] < 2000, (text[:10], result["ms"])  # linear, not quadratic
        assert result["shown"] <= len(text)
        assert set(result["tags"]) <= {"a", "strong", "em", "s", "code", "pre"}
    assert results[0]["shown"] == len(texts[0])  # unpaired markers stay as text
    assert results[3]["links"] == 5_000
    assert results[6]["tags"] == [] and results[6]["shown"] == len(texts[6])


async def test_a_live_message_is_rendered_with_markup(people):
    alice, bob = await people(), await people()
    await alice.register("alice")
    await bob.register("bob")
    await alice.say("*hi* <b>bob</b>, see https://example.com/x and `code`")
    text = bob.page.locator("#messages li.message .text").last
    await expect(text.locator("strong")).to_have_text("hi")
    await expect(text.locator("code")).to_have_text("code")
    link = text.locator("a")
    await expect(link).to_have_attribute("href", "https://example.com/x")
    await expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
    await expect(link).to_have_attribute("target", "_blank")
    await expect(text).to_contain_text("<b>bob</b>")
    assert await text.locator("b").count() == 0
