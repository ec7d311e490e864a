@abstract
class_name DemoSection
extends MarginContainer
## A tab of the demo. Its scene lays out a [code]%Lesson[/code] label and the interactive UI;
## [method run_headless] is the check that `cargo xtask demo` runs without a display (on an
## instance that is not in the tree, so it reads only the exported settings, never the UI).

## Emitted when an interactive run has ended; [param ok] tells whether the section's check held.
signal run_finished(ok: bool)

## The tab's title, and the section's name in the headless summary.
@export var title := ""
## What the section teaches: shown above its UI, printed with its headless table.
@export_multiline var lesson := ""


func _ready() -> void:
	(%Lesson as Label).text = lesson


## Runs the section's check once (it may await frames of [param host]'s tree, and add nodes to
## [param host]). Returns {headers: Array, rows: Array of Arrays, ok: bool, notes: optional Array
## of Strings}.
@abstract func run_headless(host: Node) -> Dictionary
