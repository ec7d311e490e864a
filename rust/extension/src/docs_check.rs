//! Checks the class documentation XML this extension registers for the editor's F1 help.
//!
//! gdext converts the `///` Markdown to BBCode when it compiles the classes; what it makes of
//! our text shows only here (or in the editor), so the test reads the same XML Godot is given.

/// Every `tag` element (`<tag ...>...</tag>`) of `xml`, with its opening-tag attributes and its
/// inner text. Our XML has no nested elements of the same tag.
fn elements<'a>(xml: &'a str, tag: &str) -> Vec<(&'a str, &'a str)> {
    let open = format!("<{tag} ");
    let close = format!("</{tag}>");
    let mut found = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after_open = &rest[start + open.len()..];
        let head_end = after_open.find('>').expect("an opening tag ends");
        let head = &after_open[..head_end];
        if head.ends_with('/') {
            found.push((head, ""));
            rest = &after_open[head_end..];
            continue;
        }
        let body_and_rest = &after_open[head_end + 1..];
        let end = body_and_rest.find(&close).expect("an element is closed");
        found.push((head, &body_and_rest[..end]));
        rest = &body_and_rest[end + close.len()..];
    }
    found
}

fn inner<'a>(xml: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    xml.split_once(&open)
        .and_then(|(_, rest)| rest.split_once(&close))
        .map_or("", |(body, _)| body)
}

/// The bodies of every `open...]...close` span of `text` (`open` without its `]` when the tag
/// takes attributes).
fn spans<'a>(text: &'a str, open: &str, close: &str) -> Vec<&'a str> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(open) {
        let after = &rest[start + open.len()..];
        // `[codeblock` may carry attributes (`lang=gdscript`) before its `]`.
        let head_end = if open.ends_with(']') {
            0
        } else {
            after.find(']').map_or(0, |i| i + 1)
        };
        let body_and_rest = &after[head_end..];
        let end = body_and_rest
            .find(close)
            .unwrap_or_else(|| panic!("unclosed {open} in: {text}"));
        found.push(&body_and_rest[..end]);
        rest = &body_and_rest[end + close.len()..];
    }
    found
}

/// Statement starts that, found in the middle of a one-line code block, mean its lines were
/// joined (Markdown paragraph text gets its newlines replaced by spaces).
/// (`await` and `return` are left out: they also start an expression inside a statement.)
const STATEMENT_STARTS: [&str; 6] = [" var ", " func ", " for ", " if ", " while ", " print("];

/// Whether a line of GDScript assigns an `await` to a typed variable (`var n: int = await ...`,
/// `var n := await ...`): a task that failed or was cancelled gives null there, and Godot stops
/// the function with "Trying to assign value of type 'Nil'". Comments are left out.
fn awaits_into_a_typed_variable(line: &str) -> bool {
    let code = line.split('#').next().unwrap_or_default().trim();
    code.strip_prefix("var ")
        .and_then(|rest| rest.split_once('='))
        .is_some_and(|(name, value)| name.contains(':') && value.trim_start().starts_with("await "))
}

fn problems(class: &str, xml: &str) -> Vec<String> {
    let mut found = Vec::new();
    if xml.contains("r#") {
        found.push(format!("{class}: a raw identifier (r#...) is visible"));
    }
    if inner(xml, "brief_description").trim().is_empty() {
        found.push(format!("{class}: no brief description"));
    }
    let mut described = Vec::new();
    for tag in ["method", "signal"] {
        for (head, body) in elements(xml, tag) {
            described.push((tag, head, inner(body, "description").to_owned()));
        }
    }
    for tag in ["constant", "member"] {
        for (head, body) in elements(xml, tag) {
            described.push((tag, head, body.to_owned()));
        }
    }
    for (tag, head, description) in &described {
        if description.trim().is_empty() {
            found.push(format!("{class}: {tag} {head} has no description"));
        }
    }
    let texts = std::iter::once(inner(xml, "description").to_owned())
        .chain(described.into_iter().map(|(_, _, description)| description));
    for text in texts {
        for code in spans(&text, "[codeblock", "[/codeblock]") {
            // Inside a code block Godot prints BBCode as it is.
            if code.contains("[br]") || code.contains("[b]") {
                found.push(format!(
                    "{class}: markup shown as text in a code block: {code}"
                ));
            }
            for line in code
                .lines()
                .filter(|line| awaits_into_a_typed_variable(line))
            {
                found.push(format!(
                    "{class}: an await assigned to a typed variable (null when the task fails or is cancelled; keep it untyped): {}",
                    line.trim()
                ));
            }
            if !code.trim().contains('\n') {
                for start in STATEMENT_STARTS {
                    if code.trim().contains(start) {
                        found.push(format!("{class}: a code block on one line: {code}"));
                        break;
                    }
                }
            }
        }
        for code in spans(&text, "[code]", "[/code]") {
            if code.contains("[br]") {
                found.push(format!("{class}: [br] shown as text in [code]: {code}"));
            }
        }
    }
    found
}

#[test]
fn every_class_reads_well_in_f1_help() {
    let docs: Vec<String> = godot::docs::__gather_xml_docs().collect();
    let mut classes = Vec::new();
    let mut found = Vec::new();
    let mut multi_line_code_blocks = 0;
    for xml in &docs {
        let class = xml
            .split_once("<class name=\"")
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(name, _)| name.to_owned())
            .expect("a class element");
        multi_line_code_blocks += spans(xml, "[codeblock", "[/codeblock]")
            .iter()
            .filter(|code| code.trim().contains('\n'))
            .count();
        found.extend(problems(&class, xml));
        classes.push(class);
    }
    classes.sort();
    for class in [
        "AsyncTaskProcessor",
        "AtomicCounter",
        "MainThreadDispatcher",
        "ReadWriteLock",
        "SafeObjectReference",
        "SharedResource",
        "TaskHandle",
        "ThreadContext",
        "ThreadLocal",
        "ThreadSafeNodeManager",
        "ThreadSafeQueue",
        "ThreadSafetyTester",
    ] {
        assert!(
            classes.iter().any(|c| c == class),
            "{class} not documented: {classes:?}"
        );
    }
    assert!(found.is_empty(), "F1 help problems:\n{}", found.join("\n"));
    assert!(
        multi_line_code_blocks >= 10,
        "{multi_line_code_blocks} multi-line code blocks"
    );
}

/// The checks catch what gdext made of literal `[codeblock]` text (before the Markdown fences), and
/// an example that awaits into a typed variable.
#[test]
fn a_joined_code_block_is_caught() {
    let xml = "<class name=\"X\"><brief_description>x</brief_description><description>\
        [codeblock][b]On any thread:[/b][br][br]var a = 1 var b = 2[/codeblock]</description>\
        <methods><method name=\"m\"><param index=\"0\" name=\"r#fn\" type=\"Callable\" />\
        <description></description></method></methods></class>";
    let found = problems("X", xml);
    assert!(
        found.iter().any(|p| p.contains("raw identifier")),
        "{found:?}"
    );
    assert!(
        found.iter().any(|p| p.contains("markup shown as text")),
        "{found:?}"
    );
    assert!(found.iter().any(|p| p.contains("on one line")), "{found:?}");
    assert!(
        found
            .iter()
            .any(|p| p.contains("method name=\"m\" has no description")),
        "{found:?}"
    );
    let typed = "<class name=\"X\"><brief_description>x</brief_description><description>\
        [codeblock lang=gdscript]var path: Array = await handle.wait()\n\
        var n := await handle.wait()\nvar ok = await handle.wait()  # var n: int = await\n\
        [/codeblock]</description></class>";
    let found = problems("X", typed);
    let typed_awaits: Vec<_> = found
        .iter()
        .filter(|p| p.contains("an await assigned to a typed variable"))
        .collect();
    assert_eq!(typed_awaits.len(), 2, "{found:?}");
    assert!(typed_awaits[0].ends_with("var path: Array = await handle.wait()"));
    assert!(typed_awaits[1].ends_with("var n := await handle.wait()"));
}
