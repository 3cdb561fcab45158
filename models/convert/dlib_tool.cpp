// Tiny helper compiled against the dlib 20.0.1 sdist by convert_dlib.py (one translation unit).
// It only uses dlib's own code paths, so its outputs are the reference for the ONNX conversion:
//   dlib_tool xml   NET.dat OUT.xml                       dump the network with dlib's net_to_xml
//   dlib_tool embed NET.dat CHIPS.u8 N OUT.f32             embeddings of N raw 150x150 RGB chips
//   dlib_tool chip  SP5.dat IMG.u8 W H L T R B CHIP.u8 PTS.txt
//        5-point landmarks (dlib's shape_predictor_5) inside box L,T,R,B of a raw RGB image, and
//        the 150x150 chip dlib cuts with get_face_chip_details(shape, 150, 0.25).
// dlib's library sources first (it refuses to be included after its headers): one translation unit.
#include <dlib/all/source.cpp>
#undef DLIB_ALL_SOURCE_END  // its end marker only guards against a second build of the sources
#include <dlib/dnn.h>
#include <dlib/image_processing.h>
#include <dlib/image_transforms.h>

#include <fstream>
#include <iostream>
#include <string>
#include <vector>

using namespace dlib;

// The network definition of dlib's face recognition model (as in dlib's dnn_face_recognition_ex.cpp).
template <template <int, template <typename> class, int, typename> class block, int N,
          template <typename> class BN, typename SUBNET>
using residual = add_prev1<block<N, BN, 1, tag1<SUBNET>>>;
template <template <int, template <typename> class, int, typename> class block, int N,
          template <typename> class BN, typename SUBNET>
using residual_down = add_prev2<avg_pool<2, 2, 2, 2, skip1<tag2<block<N, BN, 2, tag1<SUBNET>>>>>>;
template <int N, template <typename> class BN, int stride, typename SUBNET>
using block = BN<con<N, 3, 3, 1, 1, relu<BN<con<N, 3, 3, stride, stride, SUBNET>>>>>;
template <int N, typename SUBNET> using ares = relu<residual<block, N, affine, SUBNET>>;
template <int N, typename SUBNET> using ares_down = relu<residual_down<block, N, affine, SUBNET>>;
template <typename SUBNET> using alevel0 = ares_down<256, SUBNET>;
template <typename SUBNET> using alevel1 = ares<256, ares<256, ares_down<256, SUBNET>>>;
template <typename SUBNET> using alevel2 = ares<128, ares<128, ares_down<128, SUBNET>>>;
template <typename SUBNET> using alevel3 = ares<64, ares<64, ares<64, ares_down<64, SUBNET>>>>;
template <typename SUBNET> using alevel4 = ares<32, ares<32, ares<32, SUBNET>>>;
using anet_type = loss_metric<fc_no_bias<128, avg_pool_everything<alevel0<alevel1<alevel2<alevel3<
    alevel4<max_pool<3, 3, 2, 2, relu<affine<con<32, 7, 7, 2, 2, input_rgb_image_sized<150>>>>>>>>>>>>>;

static std::vector<unsigned char> read_all(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot read " + path);
    return std::vector<unsigned char>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

static matrix<rgb_pixel> to_image(const unsigned char* p, long w, long h) {
    matrix<rgb_pixel> img(h, w);
    for (long r = 0; r < h; ++r)
        for (long c = 0; c < w; ++c, p += 3) img(r, c) = rgb_pixel(p[0], p[1], p[2]);
    return img;
}

int main(int argc, char** argv) try {
    if (argc < 2) { std::cerr << "usage: see source\n"; return 2; }
    const std::string cmd = argv[1];
    if (cmd == "xml" && argc == 4) {
        anet_type net;
        deserialize(argv[2]) >> net;
        net_to_xml(net, argv[3]);
        return 0;
    }
    if (cmd == "embed" && argc == 6) {
        anet_type net;
        deserialize(argv[2]) >> net;
        const auto buf = read_all(argv[3]);
        const long n = std::stol(argv[4]);
        if ((long)buf.size() != n * 150 * 150 * 3) throw std::runtime_error("chip file size mismatch");
        std::vector<matrix<rgb_pixel>> chips;
        for (long i = 0; i < n; ++i) chips.push_back(to_image(buf.data() + i * 150 * 150 * 3, 150, 150));
        std::vector<matrix<float, 0, 1>> desc = net(chips);
        std::ofstream out(argv[5], std::ios::binary);
        for (auto& d : desc) out.write(reinterpret_cast<const char*>(&d(0)), sizeof(float) * d.size());
        return 0;
    }
    if (cmd == "chip" && argc == 12) {
        shape_predictor sp;
        deserialize(argv[2]) >> sp;
        const auto buf = read_all(argv[3]);
        const long w = std::stol(argv[4]), h = std::stol(argv[5]);
        if ((long)buf.size() != w * h * 3) throw std::runtime_error("image file size mismatch");
        matrix<rgb_pixel> img = to_image(buf.data(), w, h);
        rectangle box(std::stol(argv[6]), std::stol(argv[7]), std::stol(argv[8]), std::stol(argv[9]));
        full_object_detection shape = sp(img, box);
        matrix<rgb_pixel> chip;
        extract_image_chip(img, get_face_chip_details(shape, 150, 0.25), chip);
        std::ofstream out(argv[10], std::ios::binary);
        for (long r = 0; r < chip.nr(); ++r)
            for (long c = 0; c < chip.nc(); ++c) {
                const rgb_pixel px = chip(r, c);
                out.put(px.red); out.put(px.green); out.put(px.blue);
            }
        std::ofstream pts(argv[11]);
        for (unsigned long i = 0; i < shape.num_parts(); ++i)
            pts << shape.part(i).x() << " " << shape.part(i).y() << "\n";
        return 0;
    }
    std::cerr << "bad arguments\n";
    return 2;
} catch (std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
}

