extends "res://tests/support/test_case.gd"

const THREADS := 4


## Looks itself up through [member ref] while Godot destroys it: its reference count is already 0
## but it is still registered, the moment another thread's lookup can hit.
class Dying extends RefCounted:
	var ref: SafeObjectReference
	var seen: Array

	static func make(found: Array) -> Dying:
		var dying := Dying.new()
		dying.seen = found
		dying.ref = SafeObjectReference.create(dying)
		return dying

	func _notification(what: int) -> void:
		if what == NOTIFICATION_PREDELETE:
			seen.append(ref.get_object())


func test_a_reference_finds_its_object_until_it_is_freed() -> void:
	var node := Node2D.new()
	var id := node.get_instance_id()
	var ref := SafeObjectReference.create(node)
	assert_eq(ref.get_object(), node)
	assert_true(ref.is_valid())
	assert_eq(ref.get_id(), id)
	assert_eq(str(ref), "SafeObjectReference(Node2D#%d)" % id)
	node.free()
	assert_eq(ref.get_object(), null, "freed: null")
	assert_false(ref.is_valid())
	assert_eq(ref.get_id(), id, "the id outlives the object")
	assert_eq(str(ref), "SafeObjectReference(freed Node2D#%d)" % id)


func test_new_gives_an_empty_reference() -> void:
	var ref := SafeObjectReference.new()
	assert_eq(ref.get_object(), null)
	assert_false(ref.is_valid())
	assert_eq(ref.get_id(), 0)
	assert_eq(str(ref), "SafeObjectReference(empty)")


func test_create_with_null_reports_and_returns_an_empty_reference() -> void:
	expect_error("SafeObjectReference.create: the object is null")
	var ref := SafeObjectReference.create(null)
	assert_ne(ref, null, "a usable reference, not null")
	assert_eq(ref.get_object(), null)
	assert_false(ref.is_valid())
	assert_eq(ref.get_id(), 0)
	assert_eq(str(ref), "SafeObjectReference(empty)")


func test_create_with_a_freed_object_returns_an_empty_reference_and_a_non_object_reports() -> void:
	var node := Node.new()
	node.free()
	var ref := SafeObjectReference.create(node)  # No error: another thread may have freed it.
	assert_false(ref.is_valid())
	assert_eq(ref.get_id(), 0)
	expect_error("SafeObjectReference.create: the object is of type INT, not an object")
	assert_eq(SafeObjectReference.create(42).get_object(), null)


func test_a_reference_does_not_keep_a_ref_counted_alive() -> void:
	var resource := Resource.new()
	var id := resource.get_instance_id()
	var ref := SafeObjectReference.create(resource)
	assert_eq(resource.get_reference_count(), 1, "create takes no reference")
	assert_eq(ref.get_id(), id)
	assert_true(id < 0, "a RefCounted's id, as get_instance_id() gives it")
	resource = null
	assert_eq(ref.get_object(), null, "freed with its last reference")
	assert_false(ref.is_valid())
	assert_eq(str(ref), "SafeObjectReference(freed Resource#%d)" % id)


func test_what_get_object_returns_keeps_a_ref_counted_alive() -> void:
	var resource := Resource.new()
	var ref := SafeObjectReference.create(resource)
	var held: Resource = ref.get_object()
	assert_eq(resource.get_reference_count(), 2, "get_object returned a reference")
	resource = null
	assert_true(ref.is_valid(), "alive while held")
	assert_eq(ref.get_object(), held)
	held = null
	assert_false(ref.is_valid())
	assert_eq(ref.get_object(), null)


func test_a_ref_counted_being_destroyed_is_null_not_an_error() -> void:
	var seen := []
	var dying := Dying.make(seen)
	dying = null
	assert_eq(seen, [null], "looked up during its own destruction, on the main thread")
	seen.clear()
	run_threads(1, func(_i: int) -> void:
		var last := Dying.make(seen)
		last = null)
	assert_eq(seen, [null], "the same on another thread")


func test_a_thread_keeps_a_ref_counted_alive_after_the_main_thread_drops_it() -> void:
	var resource := Resource.new()
	var ref := SafeObjectReference.create(resource)
	var taken := Semaphore.new()
	var release := Semaphore.new()
	var thread := Thread.new()
	thread.start(func() -> bool:
		var held: Resource = ref.get_object()
		taken.post()
		release.wait()
		return held != null)
	taken.wait()
	resource = null
	assert_true(ref.is_valid(), "the thread's reference keeps it alive")
	release.post()
	assert_true(thread.wait_to_finish(), "the thread got it")
	assert_false(ref.is_valid(), "freed when the thread let go")
	assert_eq(ref.get_object(), null)


func test_threads_look_up_a_live_object_exactly() -> void:
	var resource := Resource.new()
	var ref := SafeObjectReference.create(resource)
	var body := func(_i: int) -> int:
		var hits := 0
		for n in 5_000:
			if ref.get_object() == resource and ref.is_valid() and ref.get_id() == resource.get_instance_id():
				hits += 1
		return hits
	var references := resource.get_reference_count()  # Ours and the lambda's.
	assert_eq(run_threads(THREADS, body), [5_000, 5_000, 5_000, 5_000])
	assert_eq(resource.get_reference_count(), references, "every reference taken was given back")


func test_threads_see_nodes_freed_by_the_main_thread_as_null() -> void:
	var nodes: Array[Node] = []
	var refs: Array[SafeObjectReference] = []
	for i in 200:
		nodes.append(Node.new())
		refs.append(SafeObjectReference.create(nodes[i]))
	var wrong := count_wrong_lookups_while_freeing(nodes, THREADS, func(i: int) -> Variant:
		return refs[i].get_object())
	assert_eq(wrong, 0, "each lookup gave its own node or null")
	for ref in refs:
		assert_eq(ref.get_object(), null)
		assert_false(ref.is_valid())


func test_threads_share_a_ref_counted_the_main_thread_lets_go_of() -> void:
	var resource := Resource.new()
	var id := resource.get_instance_id()
	var ref := SafeObjectReference.create(resource)
	var started := Semaphore.new()
	var threads: Array[Thread] = []
	for t in THREADS:
		var thread := Thread.new()
		thread.start(func() -> int:
			var wrong := 0
			started.post()
			for n in 20_000:
				var found: Object = ref.get_object()
				if found != null and found.get_instance_id() != id:
					wrong += 1
			return wrong)
		threads.append(thread)
	for t in THREADS:
		started.wait()
	resource = null  # The threads' own references now decide when it goes.
	for thread in threads:
		assert_eq(thread.wait_to_finish(), 0, "each lookup gave the resource or null")
	assert_eq(ref.get_object(), null, "freed once the last thread let go")
	assert_false(ref.is_valid())


func test_threads_creating_references_while_the_main_thread_frees_get_the_node_or_an_empty_one() -> void:
	var nodes := []
	var ids := []
	for i in 300:
		var node := Node.new()
		nodes.append(node)
		ids.append(node.get_instance_id())
	var stop := AtomicCounter.new()
	var wrong := AtomicCounter.new()
	var empty := AtomicCounter.new()
	var threads: Array[Thread] = []
	for t in THREADS:
		var thread := Thread.new()
		thread.start(func() -> void:
			while stop.get_count() == 0:
				for i in nodes.size():
					var ref := SafeObjectReference.create(nodes[i])
					if ref.get_id() == 0:
						empty.increment()
					elif ref.get_id() != ids[i]:
						wrong.increment())
		threads.append(thread)
	for node: Node in nodes:
		node.free()
		OS.delay_usec(50)
	stop.increment()
	for thread in threads:
		thread.wait_to_finish()
	assert_eq(wrong.get_count(), 0, "a reference names its node or nothing")
	assert_true(empty.get_count() > 0, "freed nodes gave empty references, silently")
