class_name DemoDispatcherSection
extends DemoSection
## Demo section 3: worker threads spawn sprites through MainThreadDispatcher.safe_add_child, a
## frame budget at a time; call_deferred adds the same flood in one long frame.

## The sprites' field, as laid out in the scene's Panel.
const FIELD := Vector2(480, 300)

## Worker threads building sprites.
@export_range(1, 16) var threads := 4
## Sprites each thread builds per spawn (headless and interactive).
@export_range(100, 20_000, 100) var sprites_per_thread := 5000

var _texture: Texture2D
## Sprites the field holds once every spawn so far has arrived (0: nothing on the way).
var _awaited := 0

@onready var _field: Node2D = %Field
@onready var _stats: Label = %Stats
@onready var _budget: SpinBox = %Budget


## Builds [param count] sprites on each of [param thread_count] threads and sends them to
## [param field]: through the dispatcher, or with call_deferred. Returns the threads to join.
static func spawn(field: Node2D, texture: Texture2D, thread_count: int, count: int, deferred: bool) -> Array[Thread]:
	var started: Array[Thread] = []
	for t in thread_count:
		var thread := Thread.new()
		thread.start(func() -> void:
			var rng := RandomNumberGenerator.new()
			for i in count:
				var sprite := Sprite2D.new()  # Building an orphan node off the main thread is fine.
				sprite.texture = texture
				sprite.position = Vector2(rng.randf() * FIELD.x, rng.randf() * FIELD.y)
				sprite.modulate = Color.from_hsv(float(t) / thread_count, 0.7, 1.0)
				if deferred:
					field.add_child.call_deferred(sprite)
				else:
					MainThreadDispatcher.safe_add_child(field, sprite))
		started.append(thread)
	return started


static func make_texture() -> Texture2D:
	var image := Image.create_empty(4, 4, false, Image.FORMAT_RGBA8)
	image.fill(Color.WHITE)
	return ImageTexture.create_from_image(image)


## Headless: the same flood both ways; frames used and the longest frame. Returns {headers, rows, ok}.
func run_headless(host: Node) -> Dictionary:
	var tree := host.get_tree()
	var texture := make_texture()
	var expected := threads * sprites_per_thread
	var rows := []
	var ok := true
	for deferred: bool in [false, true]:
		var field := Node2D.new()
		host.add_child(field)
		var over_before: int = MainThreadDispatcher.get_stats().drains_over_budget
		for thread in spawn(field, texture, threads, sprites_per_thread, deferred):
			thread.wait_to_finish()  # Everything is queued before the first frame.
		var frames := 0
		var worst := 0.0
		while field.get_child_count() < expected and frames < 10_000:
			var frame_start := Time.get_ticks_usec()
			await tree.process_frame
			worst = maxf(worst, (Time.get_ticks_usec() - frame_start) / 1000.0)
			frames += 1
		var added := field.get_child_count()
		var all_added := added == expected
		ok = ok and all_added
		var note := "all added; "
		if deferred:
			note += "all in one frame" if frames <= 2 else "%d frames" % frames
		else:
			var stats := MainThreadDispatcher.get_stats()
			note += "%d drains stopped at the %d us budget" % [stats.drains_over_budget - over_before, stats.frame_budget_usec]
			ok = ok and frames > 1
		rows.append(["call_deferred" if deferred else "safe_add_child", added, frames, "%.1f" % worst,
				note if all_added else "WRONG: %d of %d added" % [added, expected]])
		field.queue_free()
		await tree.process_frame
	return {"headers": ["variant", "nodes added", "frames", "worst frame ms", "check"], "rows": rows, "ok": ok}


## Interactive: a field of sprites, spawn buttons, the budget, live queue stats and frame times.
func _ready() -> void:
	super()
	_texture = make_texture()
	var total := threads * sprites_per_thread
	(%SpawnDispatcher as Button).text = "Spawn %d (dispatcher)" % total
	(%SpawnDeferred as Button).text = "Spawn %d (call_deferred)" % total
	_budget.set_value_no_signal(MainThreadDispatcher.get_stats().frame_budget_usec)


func _on_spawn_dispatcher_pressed() -> void:
	_spawn(false)


func _on_spawn_deferred_pressed() -> void:
	_spawn(true)


func _spawn(deferred: bool) -> void:
	_awaited = maxi(_awaited, _field.get_child_count()) + threads * sprites_per_thread
	for thread in spawn(_field, _texture, threads, sprites_per_thread, deferred):
		thread.wait_to_finish()


func _on_clear_pressed() -> void:
	_awaited = 0  # Sprites still on the way land in the cleared field; nothing waits for them.
	for child in _field.get_children():
		child.queue_free()


func _on_budget_changed(value: float) -> void:
	MainThreadDispatcher.set_frame_budget_usec(int(value))


func _process(_delta: float) -> void:
	var stats := MainThreadDispatcher.get_stats()
	var sprites := _field.get_child_count()
	_stats.text = "sprites: %d\nqueued: %d (deepest %d)\nlast drain: %d µs of %d\ndrains cut by the budget: %d" % [
			sprites, stats.pending, stats.max_depth, stats.last_drain_usec,
			stats.frame_budget_usec, stats.drains_over_budget]
	if _awaited > 0 and sprites >= _awaited:
		_awaited = 0
		run_finished.emit(true)  # Every spawned sprite is in the scene.
