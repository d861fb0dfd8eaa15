"""A corpus for the similarity check: the release's stubs, one student's answers, a copy of them
with renamed variables and reordered functions, and independent correct answers written
differently. Every answer computes the same three functions of a clipping exercise."""

RELEASE = [
    '''def clip_by_value(grads, limit):
    """Clamp every gradient to [-limit, limit] in place."""
    # YOUR CODE HERE
    raise NotImplementedError()''',
    '''def global_norm(grads):
    """The Euclidean norm of all gradients together, as a float."""
    # YOUR CODE HERE
    raise NotImplementedError()''',
    '''def clip_by_global_norm(grads, max_norm):
    """Scale all gradients by min(1, max_norm / (N + 1e-6)) in place; return N."""
    # YOUR CODE HERE
    raise NotImplementedError()''',
]

ALICE = [
    '''def clip_by_value(grads, limit):
    """Clamp every gradient to [-limit, limit] in place."""
    for g in grads:
        if g is None:
            continue
        np.clip(g, -limit, limit, out=g)''',
    '''def global_norm(grads):
    """The Euclidean norm of all gradients together, as a float."""
    squares = 0.0
    for g in grads:
        if g is not None:
            squares += float(np.sum(g * g))
    return math.sqrt(squares)''',
    '''def clip_by_global_norm(grads, max_norm):
    """Scale all gradients by min(1, max_norm / (N + 1e-6)) in place; return N."""
    total = global_norm(grads)
    scale = max_norm / (total + 1e-6)
    if scale < 1.0:
        for g in grads:
            if g is not None:
                g *= scale
    return total''',
]

# Alice's answers with every name changed, the functions' order reversed inside the cells
# (a helper moved first), and a comment added.
MALLORY = [
    '''def clip_by_value(grads, limit):
    """Clamp every gradient to [-limit, limit] in place."""
    for arr in grads:
        if arr is None:
            continue
        np.clip(arr, -limit, limit, out=arr)''',
    '''def _sq(arrays):
    acc = 0.0
    for arr in arrays:
        if arr is not None:
            acc += float(np.sum(arr * arr))
    return acc

def global_norm(grads):
    """The Euclidean norm of all gradients together, as a float."""
    return math.sqrt(_sq(grads))''',
    '''def clip_by_global_norm(grads, max_norm):
    """Scale all gradients by min(1, max_norm / (N + 1e-6)) in place; return N."""
    # the global norm first
    n = global_norm(grads)
    factor = max_norm / (n + 1e-6)
    if factor < 1.0:
        for arr in grads:
            if arr is not None:
                arr *= factor
    return n''',
]

INDEPENDENT = {
    "bob": [
        '''def clip_by_value(grads, limit):
    """Clamp every gradient to [-limit, limit] in place."""
    for i in range(len(grads)):
        if grads[i] is not None:
            grads[i][...] = np.minimum(np.maximum(grads[i], -limit), limit)''',
        '''def global_norm(grads):
    """The Euclidean norm of all gradients together, as a float."""
    present = [g.ravel() for g in grads if g is not None]
    return float(np.linalg.norm(np.concatenate(present))) if present else 0.0''',
        '''def clip_by_global_norm(grads, max_norm):
    """Scale all gradients by min(1, max_norm / (N + 1e-6)) in place; return N."""
    n = global_norm(grads)
    c = min(1.0, max_norm / (n + 1e-6))
    [np.multiply(g, c, out=g) for g in grads if g is not None]
    return n''',
    ],
    "carol": [
        '''def clip_by_value(grads, limit):
    """Clamp every gradient to [-limit, limit] in place."""
    for grad in filter(lambda a: a is not None, grads):
        grad[grad > limit] = limit
        grad[grad < -limit] = -limit''',
        '''def global_norm(grads):
    """The Euclidean norm of all gradients together, as a float."""
    return math.hypot(*(float(np.linalg.norm(x)) for x in grads if x is not None))''',
        '''def clip_by_global_norm(grads, max_norm):
    """Scale all gradients by min(1, max_norm / (N + 1e-6)) in place; return N."""
    norm_before = global_norm(grads)
    ratio = np.minimum(1.0, max_norm / (norm_before + 1e-6))
    for grad in filter(lambda a: a is not None, grads):
        grad *= ratio
    return float(norm_before)''',
    ],
    "dave": [
        '''def clip_by_value(grads, limit):
    """Clamp every gradient to [-limit, limit] in place."""
    list(map(lambda a: np.clip(a, -limit, limit, out=a), [a for a in grads if a is not None]))''',
        '''def global_norm(grads):
    """The Euclidean norm of all gradients together, as a float."""
    return float(sum((a ** 2).sum() for a in grads if a is not None) ** 0.5)''',
        '''def clip_by_global_norm(grads, max_norm):
    """Scale all gradients by min(1, max_norm / (N + 1e-6)) in place; return N."""
    before = global_norm(grads)
    if before + 1e-6 > max_norm:
        k = max_norm / (before + 1e-6)
        for a in (a for a in grads if a is not None):
            a[...] = a * k
    return before''',
    ],
}

# What an instructor's solution might hold beyond the students' code: never read, never shown.
INSTRUCTOR_ONLY = "instructor_reference_norm_marker"
