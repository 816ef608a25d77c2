import torch

from spd.decomp.components import LinearComponents, component_weight, subcomponent_weights


def test_init_has_unit_vectors_and_each_piece_is_the_projection_of_w():
    weight = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    components = LinearComponents.initialised_from(
        weight, C=6, generator=torch.Generator().manual_seed(1)
    )
    U, V = components.U.detach(), components.V.detach()
    torch.testing.assert_close(V.norm(dim=1), torch.ones(6))
    for c in range(6):
        u_dir = U[:, c] / U[:, c].norm()
        v = V[c]
        projection = u_dir @ weight @ v
        torch.testing.assert_close(U[:, c], u_dir * projection)
        # the rank-one piece is W's component along u_c v_c^T
        expected_piece = torch.outer(u_dir, v) * projection
        torch.testing.assert_close(subcomponent_weights(U, V)[c], expected_piece)


def test_component_weight_is_sum_of_pieces():
    U = torch.tensor([[1.0, 2.0], [0.0, 1.0]])
    V = torch.tensor([[1.0, 0.0, 1.0], [0.0, 3.0, 0.0]])
    torch.testing.assert_close(component_weight(U, V), subcomponent_weights(U, V).sum(0))
    torch.testing.assert_close(
        component_weight(U, V), torch.tensor([[1.0, 6.0, 1.0], [0.0, 3.0, 0.0]])
    )
