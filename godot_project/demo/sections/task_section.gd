class_name DemoTaskSection
extends DemoSection
## Demo section 2: a Mandelbrot image rendered tile by tile on worker threads, with a progress
## bar per tile, a cancel button and a frame-time graph; or on the main thread, for contrast.

## The image is cut into this many tiles per side; the scene's %Tiles grid has a bar per tile.
const TILES_PER_SIDE := 4
const TILES := TILES_PER_SIDE * TILES_PER_SIDE
## The part of the complex plane shown before any zoom.
const HOME := Rect2(-2.2, -1.5, 3.0, 3.0)
## The headless cancel check renders this big and this deep, so that it is still running when
## the first tile is done.
const CANCEL_SIZE := 512
const CANCEL_DEPTH := 400

## Side of the interactive image, in pixels (a multiple of the tiles per side).
@export_range(128, 1024, 64, "suffix:px") var image_size := 512
## Iterations per pixel of the interactive image: deeper shows more detail and takes longer.
@export_range(16, 2000) var depth := 300
## Side of the headless check's image, in pixels.
@export_range(32, 512, 32, "suffix:px") var headless_size := 128
## Iterations per pixel of the headless check's image.
@export_range(16, 2000) var headless_depth := 96
## How much a click zooms in.
@export_range(1.5, 10.0, 0.5) var zoom := 3.0

var _image: Image
var _texture: ImageTexture
var _handles: Array[TaskHandle] = []
var _view := HOME
var _bars: Array[ProgressBar] = []
var _started_usec := 0

@onready var _processor: AsyncTaskProcessor = %Processor
@onready var _picture: TextureRect = %Picture
@onready var _status: Label = %Status
@onready var _graph: DemoFrameGraph = %FrameGraph


## Renders one square tile of the image; runs on a worker ([param in_task]: it reports progress
## and stops when cancelled), or on the main thread for contrast. Returns its RGB8 pixels, or an
## empty array if the task was cancelled.
static func render_tile(origin: Vector2i, tile: int, side: int, view: Rect2, iterations: int, in_task := true) -> PackedByteArray:
	var pixels := PackedByteArray()
	pixels.resize(tile * tile * 3)
	var i := 0
	for y in tile:
		if in_task and AsyncTaskProcessor.is_cancelled():
			return PackedByteArray()
		for x in tile:
			var c := view.position + view.size * Vector2(origin.x + x, origin.y + y) / side
			var z := Vector2.ZERO
			var n := 0
			while n < iterations and z.length_squared() <= 4.0:
				z = Vector2(z.x * z.x - z.y * z.y, 2.0 * z.x * z.y) + c
				n += 1
			var t := 0.0 if n == iterations else sqrt(float(n) / iterations)
			pixels[i] = int(255 * t * t)
			pixels[i + 1] = int(255 * t)
			pixels[i + 2] = int(255 * minf(1.0, t * 1.6))
			i += 3
		if in_task:
			AsyncTaskProcessor.report_progress(float(y + 1) / tile)
	return pixels


## Pastes a finished tile into [param image]; an empty tile (cancelled) is left out.
static func paste(image: Image, origin: Vector2i, tile: int, pixels: PackedByteArray) -> void:
	if pixels.is_empty():
		return
	var tile_image := Image.create_from_data(tile, tile, false, Image.FORMAT_RGB8, pixels)
	image.blit_rect(tile_image, Rect2i(0, 0, tile, tile), origin)


## Starts one task per tile; each pastes itself into [param image] when it finishes.
static func start_render(processor: AsyncTaskProcessor, image: Image, view: Rect2, iterations: int) -> Array[TaskHandle]:
	var side := image.get_width()
	var tile := side / TILES_PER_SIDE
	var handles: Array[TaskHandle] = []
	for index in TILES:
		var origin := Vector2i(index % TILES_PER_SIDE, index / TILES_PER_SIDE) * tile
		var handle := processor.run(render_tile.bind(origin, tile, side, view, iterations))
		handle.finished.connect(func(pixels: Variant) -> void:
			paste(image, origin, tile, pixels if pixels is PackedByteArray else PackedByteArray()))
		handles.append(handle)
	return handles


## Renders the whole image on the calling thread, tile by tile.
static func render_here(image: Image, view: Rect2, iterations: int) -> void:
	var side := image.get_width()
	var tile := side / TILES_PER_SIDE
	for index in TILES:
		var origin := Vector2i(index % TILES_PER_SIDE, index / TILES_PER_SIDE) * tile
		paste(image, origin, tile, render_tile(origin, tile, side, view, iterations, false))


static func _all_done(handles: Array[TaskHandle]) -> bool:
	return handles.all(func(h: TaskHandle) -> bool: return h.is_done())


static func _count_status(handles: Array[TaskHandle], status: int) -> int:
	return handles.filter(func(h: TaskHandle) -> bool: return h.get_status() == status).size()


## Headless: main thread vs workers on the same image (identical pixels, flat frames), then a
## render cancelled midway. Returns {headers, rows, ok}.
func run_headless(host: Node) -> Dictionary:
	var processor := AsyncTaskProcessor.new()
	host.add_child(processor)
	var tree := host.get_tree()

	var reference := Image.create_empty(headless_size, headless_size, false, Image.FORMAT_RGB8)
	var started := Time.get_ticks_usec()
	render_here(reference, HOME, headless_depth)
	var main_msec := (Time.get_ticks_usec() - started) / 1000.0

	var image := Image.create_empty(headless_size, headless_size, false, Image.FORMAT_RGB8)
	started = Time.get_ticks_usec()
	var handles := start_render(processor, image, HOME, headless_depth)
	var worst_frame := 0.0
	var frames := 0
	while not (_all_done(handles) and processor.get_stats().pending + processor.get_stats().running == 0):
		var frame_start := Time.get_ticks_usec()
		await tree.process_frame
		worst_frame = maxf(worst_frame, (Time.get_ticks_usec() - frame_start) / 1000.0)
		frames += 1
	await tree.process_frame  # The last tiles are pasted during this frame's delivery.
	var workers_msec := (Time.get_ticks_usec() - started) / 1000.0
	var identical := image.get_data() == reference.get_data()

	var cancel_image := Image.create_empty(CANCEL_SIZE, CANCEL_SIZE, false, Image.FORMAT_RGB8)
	var cancelled_handles := start_render(processor, cancel_image, HOME, CANCEL_DEPTH)
	while not cancelled_handles.any(func(h: TaskHandle) -> bool: return h.is_done()):
		await tree.process_frame
	for handle in cancelled_handles:
		handle.cancel()
	processor.wait_all()  # Delivers every tile's end: completed ones pasted, the rest cancelled.
	var completed := _count_status(cancelled_handles, AsyncTaskProcessor.STATUS_COMPLETED)
	var cancelled := _count_status(cancelled_handles, AsyncTaskProcessor.STATUS_CANCELLED)
	var cancel_ok := completed + cancelled == TILES and cancelled > 0
	processor.queue_free()

	var workers := processor.worker_count if processor.worker_count > 0 else OS.get_processor_count()
	var rows := [
		["main thread", "%d/%d" % [TILES, TILES], "%.0f" % main_msec, "%.0f" % main_msec,
				"one frame frozen for the whole render"],
		["AsyncTaskProcessor", "%d/%d" % [TILES, TILES], "%.0f" % workers_msec, "%.1f" % worst_frame,
				("same pixels; %d frames meanwhile, %d workers" % [frames, workers]) if identical else "WRONG: pixels differ"],
		["cancel midway", "%d done" % completed, "-", "-",
				("%d tiles cancelled, none lost" % cancelled) if cancel_ok else "WRONG: %d done + %d cancelled" % [completed, cancelled]],
	]
	return {
		"headers": ["variant", "tiles", "ms", "worst frame ms", "check"],
		"rows": rows,
		"ok": identical and cancel_ok,
	}


## Interactive: starts a render on the workers.
func _ready() -> void:
	super()
	_bars.assign(%Tiles.get_children())
	_image = Image.create_empty(image_size, image_size, false, Image.FORMAT_RGB8)
	_texture = ImageTexture.create_from_image(_image)
	_picture.texture = _texture
	_render_on_workers()


func _render_on_workers() -> void:
	_cancel()
	_started_usec = Time.get_ticks_usec()
	_handles = start_render(_processor, _image, _view, depth)


func _render_on_main() -> void:
	_cancel()
	_started_usec = 0
	var started := Time.get_ticks_usec()
	render_here(_image, _view, depth)
	_texture.update(_image)
	_status.text = "Main thread: the game was frozen for %.0f ms." % ((Time.get_ticks_usec() - started) / 1000.0)
	run_finished.emit(true)


func _cancel() -> void:
	for handle in _handles:
		handle.cancel()


func _reset_view() -> void:
	_view = HOME
	_render_on_workers()


func _on_picture_input(event: InputEvent) -> void:
	var click := event as InputEventMouseButton
	if click and click.pressed and click.button_index == MOUSE_BUTTON_LEFT:
		var at: Vector2 = _view.position + _view.size * click.position / _picture.size
		_view = Rect2(at - _view.size / (2.0 * zoom), _view.size / zoom)
		_render_on_workers()


func _process(_delta: float) -> void:
	if _started_usec == 0:
		return
	var done := 0
	for i in _handles.size():
		_bars[i].value = _handles[i].get_progress()
		if _handles[i].is_done():
			done += 1
	_texture.update(_image)
	if done < _handles.size():
		_status.text = "Workers: %d of %d tiles, %.0f ms so far. Frames stay flat (see the graph)." % [
				done, _handles.size(), (Time.get_ticks_usec() - _started_usec) / 1000.0]
		return
	var completed := _count_status(_handles, AsyncTaskProcessor.STATUS_COMPLETED)
	var cancelled := _count_status(_handles, AsyncTaskProcessor.STATUS_CANCELLED)
	_status.text = "Workers: done in %.0f ms (%d tiles cancelled); the worst frame meanwhile took %.1f ms." % [
			(Time.get_ticks_usec() - _started_usec) / 1000.0, cancelled, _graph.worst_msec()]
	_started_usec = 0
	run_finished.emit(completed + cancelled == _handles.size())  # Every tile ended; none lost.
